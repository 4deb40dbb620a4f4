"""`tegel plan` (a model compiled onto the tiles of a dataflow system) and `tegel gemm` (cycles
of one GEMM on a systolic array); also the `--trace` writer of `tegel run --sim event`."""

from __future__ import annotations

import argparse
from typing import Any

from tegel.cli import argtypes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="compile a model onto the tiles of a dataflow system",
                       description="The spatial compiler's plan for one phase of a model: pipeline "
                       "stages on regions of tiles, each op's split, every tensor's home, every "
                       "transfer's route. Parallelism and stages are the ones `tegel run` chooses "
                       "unless given.")
    p.add_argument("model", help="shipped model name, config.json path or MODEL.onnx")
    p.add_argument("--on", required=True, metavar="SYSTEM", help="dataflow chip or system preset, or YAML")
    p.add_argument("--phase", choices=("prefill", "decode"), default="decode", help="(decode)")
    p.add_argument("--batch", type=argtypes.count, default=1, help="sequences served together (1)")
    p.add_argument("--input", type=argtypes.count, default=1024, metavar="L", help="prompt tokens (1024)")
    p.add_argument("--output", type=argtypes.count, default=256, metavar="O", help="generated tokens (256)")
    p.add_argument("--precision", default="auto", help="bf16, fp16, fp8, ... (auto)")
    p.add_argument("--stages", type=argtypes.count, help="pipeline stages (default: chosen)")
    p.add_argument("--pp", type=argtypes.count, help="chips per replica (default: chosen)")
    p.add_argument("--brief", action="store_true", help="leave out the per-op splits")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--schedule", choices=("layer", "fused", "auto"), default="auto",
                   help="ONNX models: layer by layer, layers fused across regions, or auto "
                   "(default: the faster of the two)")
    p.set_defaults(func=plan_command)
    g = sub.add_parser("gemm", help="cycles of a GEMM on a systolic array",
                       description="Cycles and utilisation of out[M,N] = a[M,K] @ w[K,N] on one "
                       "R x C systolic array, split into fill, compute and drain, folded over the "
                       "array (batch 1, operands already on chip).")
    g.add_argument("m", type=argtypes.count, metavar="M")
    g.add_argument("n", type=argtypes.count, metavar="N")
    g.add_argument("k", type=argtypes.count, metavar="K")
    g.add_argument("--array", required=True, metavar="RxC", help="array shape, e.g. 128x128")
    g.add_argument("--dataflow", required=True, choices=("ws", "os", "is"),
                   help="weight-, output- or input-stationary")
    g.add_argument("--fold-overlap", default="double_buffered", choices=("double_buffered", "none"),
                   help="double_buffered: the next fold loads while this one streams (TPU, the "
                   "default); none: every fold pays its own fill and drain (SCALE-Sim v3)")
    g.add_argument("--json", action="store_true", help="print JSON")
    g.set_defaults(func=gemm_command)


def _compile(args: argparse.Namespace) -> Any:
    """The compiled plan `tegel run` chooses for the phase (the same mapping, not a copy)."""
    from tegel.errors import TegelError
    from tegel.hardware import load_system
    from tegel.serving import run
    from tegel.serving.scenario import RunOptions

    system = load_system(args.on)
    result = run(args.model, system, args.batch, args.input, args.output, args.precision,
                 options=RunOptions(pp=args.pp, stages=args.stages))
    if result.chosen.compiled is None:
        raise TegelError(f"{system.name}: `tegel plan` shows spatial plans of dataflow chips; "
                         f"{system.chip.name} is mapped kernel by kernel (see `tegel run --ops`)")
    prefill, decode = result.chosen.compiled
    compiled = prefill if args.phase == "prefill" else decode
    if args.stages is not None and len(compiled.stages) < args.stages:
        raise TegelError(f"--stages {args.stages}: {system.name} runs {args.model} in at most "
                         f"{len(compiled.stages)} stages (one layer and one tile per stage at "
                         "least); give --stages up to that")
    return compiled


def plan_command(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.report import plan as report

    for flag in ("batch", "input", "output", "stages", "pp"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise TegelError(f"--{flag}: expected a positive integer, got {value}")
    if args.model.lower().endswith(".onnx"):  # any graph, not an LLM config
        from tegel.cli.graph_cmd import graph_plan_command

        return graph_plan_command(args)
    compiled = _compile(args)
    print(report.to_json(compiled) if args.json else report.render_text(compiled, args.brief))
    return 0


def gemm_command(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.hardware.systolic import gemm_cycles, parse_array
    from tegel.report import plan as report

    if min(args.m, args.n, args.k) < 1:
        raise TegelError(f"M, N and K must be positive, got {args.m} {args.n} {args.k}")
    rows, cols = parse_array(args.array)
    result = gemm_cycles(args.m, args.n, args.k, rows, cols, args.dataflow,
                         fold_overlap=args.fold_overlap)
    print(report.gemm_json(result) if args.json
          else report.gemm_text(result, args.m, args.n, args.k, rows, cols))
    return 0


def write_run_trace(path: str, result: Any) -> int:
    """Simulate the prefill and the decode step `result` (a RunResult) chose — the compiled
    plans on dataflow chips, the kernel sequence on GPUs — and write both timelines (decode
    after prefill) to `path` as a Chrome trace; returns the number of spans."""
    from tegel.evaluate.simulator import simulate
    from tegel.evaluate.trace import TraceRecorder, write_chrome_trace

    chosen = result.chosen
    compiled = chosen.compiled or (None, None)
    recorders, offset = [], 0.0
    for label, cost, plan in (("prefill", chosen.prefill, compiled[0]),
                              ("decode", chosen.decode, compiled[1])):
        rec = TraceRecorder(label, offset)
        simulated = simulate(plan or cost.plan, result.system, tracer=rec, lowered=cost.plan)
        if simulated.power_capped and rec.end_s > 0:  # drawn at the throttled clock
            rec.stretch(simulated.time_s / rec.end_s)
        offset += simulated.time_s
        recorders.append(rec)
    return write_chrome_trace(path, recorders)  # through a temporary file renamed into place
