"""`tegel inspect MODEL`: what a model costs before any hardware."""

from __future__ import annotations

import argparse

from tegel.cli import argtypes
from tegel.report import inspect as report
from tegel.report import jsonout

DEFAULT_INPUT, DEFAULT_KV = 2048, 4096  # prompt and KV lengths when the user gives none


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="parameters, bytes and FLOPs of a model",
                       description="Parameters, weight and KV-cache bytes, FLOPs and minimal "
                       "bytes per token of a shipped model or a Hugging Face config.json; "
                       "parameters, MACs, FLOPs and bytes by op kind of an .onnx file.")
    p.add_argument("model", nargs="?", help="shipped model name (see --list), config.json path "
                   "or .onnx file")
    p.add_argument("--list", action="store_true",
                   help="list the shipped models with their families and sizes, and exit")
    p.add_argument("--input", type=argtypes.count, metavar="L",
                   help=f"prefill tokens ({DEFAULT_INPUT}, at most the model's positions)")
    p.add_argument("--kv", type=argtypes.bounded_int(0), metavar="K",
                   help=f"decode KV length ({DEFAULT_KV}, at most the model's positions - 1)")
    p.add_argument("--batch", type=argtypes.count, default=1, metavar="B",
                   help="batch (1; for an .onnx file, its dynamic batch dimension)")
    p.add_argument("--precision", default="bf16", help="weights, activations and KV format (bf16)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.workload import DType, Precision, load_model_config
    from tegel.workload.summary import summarize

    if args.list:
        return _list(args.json)
    if args.model is None:
        raise TegelError("give a model: a shipped name (tegel inspect --list) or a config.json path")
    for flag, value in (("--input", args.input), ("--batch", args.batch)):
        if value is not None and value < 1:
            raise TegelError(f"{flag}: expected a positive integer, got {value}")
    if args.kv is not None and args.kv < 0:
        raise TegelError(f"--kv: expected a non-negative integer, got {args.kv}")
    try:
        dtype = DType.parse(args.precision)
    except ValueError as err:
        raise TegelError(f"--precision: {err}") from None
    if args.model.endswith(".onnx"):
        return _onnx(args)
    cfg = load_model_config(args.model)
    prompt, kv, note = _lengths(args.input, args.kv, cfg.name, cfg.max_position_embeddings)
    card = summarize(cfg, prompt, kv, args.batch, Precision.uniform(dtype))
    card["notes"] = [note] if note else []
    if args.json:
        print(jsonout.dumps(card, indent=2))
        return 0
    print(report.render_text(card))
    return 0


def _list(as_json: bool) -> int:
    """Every shipped model: its family (the config's model_type), parameters, active
    parameters per token and experts."""
    from tegel.workload import Phase, build_llm_graph, load_model_config, shipped_models
    from tegel.workload.summary import active_parameters

    records: list[dict[str, object]] = []
    for name in shipped_models():
        cfg = load_model_config(name)
        graph = build_llm_graph(cfg, Phase.decode(1, 1))
        active = active_parameters(graph, cfg)
        records.append({"model": name, "family": cfg.model_type,
                        "parameters": graph.parameter_count, "active_parameters": active,
                        "experts": cfg.num_experts, "experts_per_token": cfg.experts_per_token})
    if as_json:
        print(jsonout.dumps(records, indent=2))
    else:
        print(report.list_text(records))
    return 0


def _lengths(prompt: int | None, kv: int | None, model: str,
             positions: int) -> tuple[int, int, str | None]:
    """(prompt tokens, decode KV length, note): a prefill of L tokens needs L positions and a
    decode step at KV length K needs K + 1. Defaults are clipped to fit, with a note saying
    so; a value the user gave that does not fit is an error naming its flag."""
    from tegel.errors import TegelError

    if prompt is not None and prompt > positions:
        raise TegelError(f"--input {prompt}: a prefill of {prompt} tokens exceeds "
                         f"{model}'s max_position_embeddings {positions}")
    if kv is not None and kv + 1 > positions:
        raise TegelError(f"--kv {kv}: a decode step at KV length {kv} needs {kv + 1} positions, "
                         f"which exceeds {model}'s max_position_embeddings {positions}")
    clipped = []
    if prompt is None:
        prompt = min(DEFAULT_INPUT, positions)
        if prompt < DEFAULT_INPUT:
            clipped.append(f"--input {prompt}")
    if kv is None:
        kv = min(DEFAULT_KV, positions - 1)
        if kv < DEFAULT_KV:
            clipped.append(f"--kv {kv}")
    note = (f"defaults clipped to {model}'s {positions} positions: {', '.join(clipped)}"
            if clipped else None)
    return prompt, kv, note


def _onnx(args: argparse.Namespace) -> int:
    """Parameters, MACs, FLOPs and bytes, in total and by op kind, of an ONNX model."""
    from tegel.workload.graph_card import graph_card
    from tegel.workload.onnx_frontend import load_onnx

    card = graph_card(load_onnx(args.model, args.batch))
    if args.json:
        print(jsonout.dumps(card, indent=2))
        return 0
    print(report.onnx_text(args.model, card))
    return 0
