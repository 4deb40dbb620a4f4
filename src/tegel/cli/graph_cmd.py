"""`tegel run MODEL.onnx` and `tegel plan MODEL.onnx`: any graph (a CNN...) on a system.

`tegel run` and `tegel plan` hand a model argument that is a path ending in `.onnx` here. The
graph comes from the ONNX frontend, `tegel.workload.onnx_frontend.load_onnx(path, batch)`,
imported only when it is needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def is_graph_model(model: str) -> bool:
    """A model argument that names an ONNX file rather than an LLM config."""
    return model.lower().endswith(".onnx")


def graph_args(p: argparse.ArgumentParser) -> None:
    """The flags of a graph run that an LLM run does not have."""
    p.add_argument("--schedule", choices=("layer", "fused", "auto"), default="auto",
                   help="ONNX models on dataflow chips: layer by layer over the whole chip, "
                   "layers fused across tile regions with images streamed through, or auto "
                   "(default: both priced, the faster kept and said)")
    p.add_argument("--layers", action="store_true",
                   help="ONNX models: print the per-layer table (time, bound, MACs, energy by level)")
    p.add_argument("--host-overhead", action="store_true",
                   help="ONNX models: charge the LLM serving engine's host work per call")


def _batch(text: Any) -> int:
    from tegel.errors import TegelError

    try:
        batch = int(text if text is not None else 1)
    except (TypeError, ValueError):
        raise TegelError(f"--batch: expected a positive integer, got {text!r}") from None
    if batch < 1:
        raise TegelError(f"--batch: expected a positive integer, got {batch}")
    return batch


def load_graph(path: str, batch: int) -> Any:
    """The graph of ONNX model `path` at `batch` images (the ONNX frontend, imported lazily)."""
    from tegel.errors import TegelError

    if not Path(path).is_file():
        raise TegelError(f"model: no such ONNX file {path!r}")
    try:
        from tegel.workload.onnx_frontend import load_onnx
    except ImportError:
        raise TegelError("model: ONNX files need the ONNX frontend (tegel.workload.onnx_frontend), "
                         "which this build does not have") from None
    return load_onnx(path, batch)


def _result(args: argparse.Namespace) -> Any:
    from tegel.mapping.params import load_params
    from tegel.mapping.schedule import Schedule
    from tegel.serving.graph_run import GraphRunOptions, run_graph

    batch = _batch(args.batch)
    graph = load_graph(args.model, batch)
    # the network at batch 1 too, for a fused schedule's micro-batches of one image
    single = load_graph(args.model, 1) if batch > 1 else None
    # an ONNX model is fp32; the run prices it in --precision's formats (auto: the chip's bf16)
    options = GraphRunOptions(Schedule.parse(getattr(args, "schedule", "auto")),
                              getattr(args, "sim", "analytical"),
                              getattr(args, "host_overhead", False),
                              getattr(args, "precision", "auto"))
    params = load_params(args.params) if getattr(args, "params", None) else None
    return run_graph(graph, args.on, options=options, params=params, single=single,
                     batch_note=f"batch {batch} from --batch")


# `tegel run` flags of an LLM run, and the value that means "not given"
_LLM_ONLY = {"input": None, "output": 256, "tp": None, "pp": None, "ep": None, "weights": None,
             "activations": None, "kv_cache": None, "max_batch": 2048, "speculative": None,
             "draft": None, "draft_tokens": None, "acceptance": None, "acceptance_lengths": None,
             "plot": None}


def refuse_llm_flags(args: argparse.Namespace) -> None:
    """An ONNX model has no prompt, output, KV cache or tensor parallelism: a flag of an LLM
    run is refused by name rather than silently ignored."""
    from tegel.errors import TegelError

    given = [k for k, unset in _LLM_ONLY.items() if getattr(args, k, unset) != unset]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise TegelError(f"{flags}: LLM-run flag(s) that do not apply to an ONNX model "
                         "(it takes --batch, --precision, --schedule, --sim, --layers, --ops)")


def graph_run_command(args: argparse.Namespace) -> int:
    """`tegel run MODEL.onnx --on SYSTEM`."""
    from tegel.errors import TegelError
    from tegel.report import graph as report

    if getattr(args, "trace", None):
        raise TegelError("--trace: not available for ONNX models yet")
    refuse_llm_flags(args)
    result = _result(args)
    if args.json:  # the per-layer rows are always in the JSON; --ops adds the per-op rows
        print(report.to_json(result, ops=args.ops))
    else:
        print(report.render_text(result, layers=args.layers, ops=args.ops))
    return 0


def graph_plan_command(args: argparse.Namespace) -> int:
    """`tegel plan MODEL.onnx --on SYSTEM`: the plan a graph run prices."""
    from tegel.report import graph as report

    result = _result(args)
    print(report.plan_json(result) if args.json
          else report.plan_text(result, getattr(args, "brief", False)))
    return 0
