"""`tegel run` and `tegel compare`: LLM inference of a model on one system or several."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tegel.cli import argtypes
from tegel.cli.graph_cmd import graph_args, graph_run_command, is_graph_model
from tegel.cli.outputs import add_force
from tegel.report import run as report
from tegel.report.plots import write_plot
from tegel.report.progress import Bar


def format_args(p: argparse.ArgumentParser) -> None:
    """--precision and its per-part overrides (read back by `formats`)."""
    p.add_argument("--precision", default="auto", help="weights, activations and KV cache format: "
                   "bf16, fp16, fp8, fp4, int8 (auto: bf16 where the chip has it)")
    p.add_argument("--weights", help="weight format (overrides --precision)")
    p.add_argument("--activations", help="activation format (overrides --precision)")
    p.add_argument("--kv-cache", help="KV-cache format (overrides --precision)")


def beams_arg(p: argparse.ArgumentParser) -> None:
    """--beams (`tegel run` and `tegel serve`)."""
    p.add_argument("--beams", type=argtypes.count, metavar="B", help="beam search: B hypotheses "
                   "per request, sharing its prompt's KV cache (1; MLPerf GPT-J: 4)")


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="shipped model name or config.json path (see `tegel inspect`); "
                   "`tegel run`: also an ONNX file (MODEL.onnx)")
    p.add_argument("--batch", type=argtypes.batch_or_auto,
                   help="sequences served together, or 'auto': the largest batch "
                   "that fits memory, for maximum throughput (1)")
    p.add_argument("--input", type=argtypes.count, metavar="L", help="prompt tokens (1024, fewer when the "
                   "model has fewer positions)")
    p.add_argument("--output", type=argtypes.count, default=256, metavar="O", help="generated tokens (256)")
    format_args(p)
    p.add_argument("--tp", type=argtypes.count, help="tensor-parallel degree (default: chosen)")
    p.add_argument("--pp", type=argtypes.count, help="pipeline-parallel degree (default: chosen)")
    p.add_argument("--ep", type=argtypes.count, help="expert-parallel degree, divides tp (default 1)")
    p.add_argument("--max-batch", type=argtypes.count, default=2048, help="cap per replica for --batch auto")
    p.add_argument("--params", metavar="FILE", help="a calibration written by `tegel validate "
                   "--calibrate --write FILE` (default: the shipped parameters)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", metavar="FILE", help="also draw the charts into FILE (.png or .svg, matplotlib)")
    add_force(p)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="LLM inference of a model on a system",
                       description="Time, energy and memory of prefill + decode of a model on a "
                       "system: TTFT, TPOT, throughput, J/token, power.")
    _scenario_args(p)
    p.add_argument("--on", required=True, metavar="SYSTEM", help="system or chip preset, or YAML")
    p.add_argument("--ops", action="store_true", help="also print the per-step table")
    p.add_argument("--sim", choices=("analytical", "event"), default="analytical",
                   help="evaluator: analytical formulas, or the event simulator playing the "
                   "same plan with queues on shared resources (analytical)")
    p.add_argument("--trace", metavar="FILE", help="with --sim event: write the simulated "
                   "timeline as Chrome trace JSON (open in Perfetto)")
    graph_args(p)
    beams_arg(p)
    speculative_args(p)
    p.set_defaults(func=run_command)
    c = sub.add_parser("compare", help="the same LLM workload on several systems",
                       description="One workload on several systems, with ratios to a baseline.")
    _scenario_args(c)
    c.add_argument("--on", required=True, metavar="A,B,C", help="comma-separated systems")
    c.add_argument("--baseline", help="system the ratios are relative to (default: the first)")
    slo = c.add_argument_group("service level (any of these: each system at its operating point "
                               "instead of one static batch)")
    slo.add_argument("--min-tokens-per-s-per-user", type=argtypes.positive, metavar="X",
                     help="speed each user must see, 1 / median TPOT")
    slo.add_argument("--slo-tpot", type=argtypes.seconds, metavar="S",
                     help="median time per output token, s (the same limit as 1/S tokens/s per user)")
    slo.add_argument("--max-ttft", type=argtypes.seconds, metavar="S", help="p99 time to first token, s (2: "
                     "the default for 1,024-token prompts, not scaled with --input)")
    slo.add_argument("--scheduler", choices=("chunked", "continuous"),
                     help="how every system batches requests (chunked)")
    c.set_defaults(func=compare_command)


def _positive(flag: str, value: int | None) -> None:
    from tegel.errors import TegelError

    if value is not None and value < 1:
        raise TegelError(f"{flag}: expected a positive integer, got {value}")


def _setup(args: argparse.Namespace, system: str) -> tuple[Any, ...]:
    """(model config, system, precision, options, params) from the shared flags."""
    from tegel.hardware import load_system
    from tegel.mapping.params import load_params
    from tegel.serving.scenario import RunOptions
    from tegel.workload import load_model_config

    for flag in ("input", "output", "tp", "pp", "ep", "max_batch"):
        _positive("--" + flag.replace("_", "-"), getattr(args, flag))
    sys_ = load_system(system)
    options = RunOptions(args.tp, args.pp, args.ep, max_batch_per_replica=args.max_batch,
                         sim=getattr(args, "sim", "analytical"),
                         beams=getattr(args, "beams", None) or 1)
    return (load_model_config(args.model), sys_, formats(args, sys_), options,
            load_params(args.params))


def formats(args: argparse.Namespace, system: Any) -> Any:
    """The Precision of --precision, overridden part by part by --weights, --activations and
    --kv-cache (shared by every command that takes them)."""
    from tegel.errors import TegelError
    from tegel.serving.scenario import resolve_precision
    from tegel.workload import DType, Precision

    base = resolve_precision(system, args.precision)
    parts = {}
    for field in ("weights", "activations", "kv_cache"):
        text = getattr(args, field)
        try:
            parts[field] = DType.parse(text) if text else getattr(base, field)
        except ValueError as err:
            raise TegelError(f"--{field.replace('_', '-')}: {err}") from None
    return Precision(**parts)


def _run(args: argparse.Namespace, system: str) -> Any:
    from tegel.errors import TegelError
    from tegel.serving import run

    batch: int | str = args.batch or "1"
    if batch != "auto":
        try:
            batch = int(batch)
        except ValueError:
            raise TegelError(f"--batch: expected a positive integer or 'auto', got {batch!r}") from None
    cfg, sys_, precision, options, params = _setup(args, system)
    return run(cfg, sys_, batch, _input_tokens(args, cfg), args.output, precision,
               options=options, params=params,
               speculation=speculation(args) if "speculative" in args else None)


DEFAULT_INPUT_TOKENS = 1024


def _input_tokens(args: argparse.Namespace, cfg: Any) -> int:
    """--input, or 1024 clipped to what the model's positions leave beside --output (said)."""
    if args.input is not None:
        return int(args.input)
    room = cfg.max_position_embeddings - args.output
    if room >= DEFAULT_INPUT_TOKENS or room < 1:
        return DEFAULT_INPUT_TOKENS  # room < 1: the run reports the model's limit
    print(f"note: prompt clipped to {room} tokens: {cfg.name} has "
          f"{cfg.max_position_embeddings} positions and --output is {args.output}", file=sys.stderr)
    return room


def run_command(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError

    if is_graph_model(args.model):  # an ONNX file: any graph, not an LLM config
        return graph_run_command(args)
    if args.trace is not None and args.sim != "event":
        raise TegelError("--trace needs --sim event")
    result = _run(args, args.on)
    if args.trace is not None:
        from tegel.cli.plan_cmd import write_run_trace

        write_run_trace(args.trace, result)
    write_plot(args.plot, "run", {**result.to_dict(), "ops": result.op_rows()})
    if args.json:
        print(report.to_json(result, ops=args.ops))
    else:
        print(report.render_text(result, ops=args.ops))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError

    systems = [s.strip() for s in args.on.split(",") if s.strip()]
    if not systems:
        raise TegelError("--on: expected a comma-separated list of systems")
    baseline = args.baseline or systems[0]
    if baseline not in systems:
        raise TegelError(f"--baseline {baseline!r} is not one of --on: {', '.join(systems)}")
    service = _service_level(args)
    with Bar("compare (systems)", total=len(systems), quiet=args.json) as bar:
        results = {}
        for name in systems:
            results[name] = (_run(args, name).to_dict() if service is None
                             else _operating(args, name, service))
            bar.advance()
    first = next(iter(results.values()))
    if service is None:
        said = (f"static batch {args.batch or 1} (tegel run) on every system; no service level "
                f"(give --min-tokens-per-s-per-user or --max-ttft for operating points)")
    else:
        said = (f"each system at its operating point (highest throughput) at the same service "
                f"level: {service.describe(first['input_tokens'])}")
    write_plot(args.plot, "compare", {"baseline": baseline, "results": results})
    if args.json:
        print(report.compare_json(results, baseline, None if service is None
                                  else service.to_dict(first["input_tokens"])))
    else:
        print(report.compare_text(results, systems, baseline, said, service is not None))
    return 0


def _service_level(args: argparse.Namespace) -> Any:
    """The service level the SLO flags give (None: none given, today's static batch)."""
    from tegel.errors import TegelError
    from tegel.serving.operating import ServiceLevel
    from tegel.serving.replica import SchedulerConfig

    speed, tpot = args.min_tokens_per_s_per_user, args.slo_tpot
    if speed is None and tpot is None and args.max_ttft is None:
        if args.scheduler is not None:
            raise TegelError("--scheduler: needs a service level (--min-tokens-per-s-per-user, "
                             "--slo-tpot or --max-ttft)")
        return None
    if speed is not None and tpot is not None:
        raise TegelError("--slo-tpot and --min-tokens-per-s-per-user say the same thing; give one")
    if tpot is not None and not tpot > 0:
        raise TegelError(f"--slo-tpot: expected a positive number of seconds, got {tpot:g}")
    if args.batch is not None:
        raise TegelError("--batch: a service level chooses each system's concurrency; drop --batch")
    speed = 1.0 / tpot if tpot is not None else (speed or 0.0)
    return ServiceLevel(speed, args.max_ttft, SchedulerConfig(kind=args.scheduler or "chunked"))


def _operating(args: argparse.Namespace, system: str, service: Any) -> dict[str, Any]:
    """One system at its operating point, as a flat dict for the table and JSON."""
    from tegel.serving.operating import find_operating_point

    cfg, sys_, precision, options, params = _setup(args, system)
    op = find_operating_point(cfg, sys_, _input_tokens(args, cfg), args.output, service,
                              precision=precision, options=options, params=params)
    p, r = op.point, op.point.result
    return {"model": cfg.name, "system": sys_.name, "input_tokens": int(r.workload.input_tokens[0]),
            "output_tokens": int(r.workload.output_tokens[0]), "batch": p.concurrency,
            "precision": {"weights": precision.weights.value,
                          "activations": precision.activations.value,
                          "kv_cache": precision.kv_cache.value},
            "chips_busy": r.chips_busy, "chips_idle": r.chips_idle,
            "ttft_p50_s": p.ttft_p50_s, "ttft_p99_s": p.ttft_p99_s, "tpot_p50_s": p.tpot_p50_s,
            "tpot_p99_s": p.tpot_p99_s, "throughput_tokens_per_s": p.throughput_tokens_per_s,
            "tokens_per_s_per_user": p.tokens_per_s_per_user,
            "energy_j_per_token": p.energy_j_per_token, "power_w": p.power_w,
            **{k: v for k, v in op.to_dict().items() if k in ("concurrency", "requests",
                                                               "scheduler", "parallelism",
                                                               "search")}}


def speculative_args(p: argparse.ArgumentParser) -> None:
    """The speculative-decoding flags (read back by `speculation`)."""
    g = p.add_argument_group("speculative decoding (each decode step: k draft passes + one "
                             "verify of k + 1 tokens)")
    g.add_argument("--speculative", choices=("draft", "eagle", "ngram"),
                   help="who drafts: a separate draft model (--draft), an EAGLE-style head (one "
                   "layer of the model's width + its LM head), or n-gram prompt lookup (free)")
    g.add_argument("--draft", metavar="MODEL", help="the draft model of --speculative draft "
                   "(shipped name or config.json; same vocabulary as the model)")
    g.add_argument("--draft-tokens", type=argtypes.count, metavar="K", help="drafts per step (4)")
    g.add_argument("--acceptance", type=argtypes.fraction, metavar="RATE", help="per-token acceptance rate "
                   "in [0, 1], i.i.d.: E = (1 - a^(k+1)) / (1 - a) tokens per verify")
    g.add_argument("--acceptance-lengths", metavar="P0,..,PK", help="measured probabilities "
                   "of accepting 0..k drafts (k + 1 of them, summing to 1): E = 1 + their mean")


DEFAULT_DRAFT_TOKENS = 4


def speculation(args: argparse.Namespace) -> Any:
    """The Speculation the flags describe, or None without --speculative."""
    from tegel.errors import TegelError
    from tegel.serving.speculative import Speculation
    from tegel.workload import load_model_config

    if args.speculative is None:
        for flag in ("draft", "draft_tokens", "acceptance", "acceptance_lengths"):
            if getattr(args, flag) is not None:
                raise TegelError(f"--{flag.replace('_', '-')}: needs --speculative "
                                 f"{{draft,eagle,ngram}}")
        return None
    lengths = None
    if args.acceptance_lengths is not None:
        try:
            lengths = tuple(float(x) for x in args.acceptance_lengths.split(","))
        except ValueError:
            raise TegelError(f"--acceptance-lengths: expected comma-separated probabilities, "
                             f"got {args.acceptance_lengths!r}") from None
    k = DEFAULT_DRAFT_TOKENS if args.draft_tokens is None else args.draft_tokens
    draft = load_model_config(args.draft) if args.draft is not None else None
    return Speculation(args.speculative, k, args.acceptance, lengths, draft)
