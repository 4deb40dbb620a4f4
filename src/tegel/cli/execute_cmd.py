"""`tegel execute MODEL.onnx --input x.npy --on SYSTEM`: the model run on real numbers in the
system's number formats, against onnxruntime in fp32 — what int8 or fp8 costs in accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tegel.errors import TegelError
from tegel.report import generate as report
from tegel.report import jsonout

if TYPE_CHECKING:  # imported lazily at run time: `tegel --help` loads every command module
    import numpy as np



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("execute", help="run an ONNX model in a system's number formats",
                       description="Run MODEL.onnx on the input batch in --input (.npy) with "
                       "tegel's functional executor, weights and activations stored in the "
                       "system's (or --precision's) format, and compare with onnxruntime in "
                       "fp32: max abs/rel error of the outputs and top-1 agreement.")
    p.add_argument("model", help=".onnx file")
    p.add_argument("--input", required=True, metavar="X.npy",
                   help="input batch as a NumPy file (its first axis is the batch)")
    p.add_argument("--on", required=True, metavar="SYSTEM", help="system or chip preset, or YAML")
    p.add_argument("--precision", default="auto",
                   help="weights and activations format: fp8, int8, bf16, ... (auto: the "
                   "system's bf16 or best supported)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=execute_command)


def _load_input(path: str) -> np.ndarray:
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise TegelError(f"--input {path}: not a readable .npy file ({err})") from None
    if x.dtype.kind != "f" or x.ndim < 1:
        raise TegelError(f"--input {path}: expected a float array with a batch axis, got "
                         f"{x.dtype} {x.shape}")
    return x.astype(np.float32)


def execute_onnx(model_path: str, x: np.ndarray, system: str, precision: str) -> dict:
    """Outputs of the model in the system's formats vs onnxruntime fp32 on the batch `x`."""
    import numpy as np
    import onnxruntime as ort

    from tegel.evaluate.functional import execute, quantize_weights
    from tegel.hardware.loader import load_system
    from tegel.serving.scenario import resolve_precision
    from tegel.workload import interpret
    from tegel.workload.imported import in_formats
    from tegel.workload.onnx_frontend import load_onnx_model

    model = load_onnx_model(model_path, batch=x.shape[0])
    graph = model.graph
    if len(graph.inputs) != 1 or graph.inputs[0].shape != x.shape:
        wanted = [t.shape for t in graph.inputs]
        raise TegelError(f"--input: {Path(model_path).name} takes inputs {wanted}, got {x.shape}")
    sys_ = load_system(system)
    fmt = resolve_precision(sys_, precision)
    typed = in_formats(graph, fmt.weights, fmt.activations)
    # an all-but-zero block's int8 scale underflows fp16 to 0 in `numerics`; its elements
    # decode to 0 all the same, so the 0/0 warnings say nothing to the user
    with np.errstate(divide="ignore", invalid="ignore"):
        feeds = {**quantize_weights(model.weights, typed), graph.inputs[0].name: x}
        outs, _ = execute(typed, feeds, {}, fmt)
    got = next(iter(outs.values()))
    exact = next(iter(interpret(graph, model.feeds({graph.inputs[0].name: x})).values()))
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    scale = float(np.abs(want).max()) or 1.0

    def compare(a: np.ndarray) -> dict:
        err = float(np.abs(a - want).max())
        top1 = float(np.mean(a.reshape(len(a), -1).argmax(-1) == want.reshape(len(want), -1)
                             .argmax(-1)))
        return {"max_abs_error": err, "max_rel_error": err / scale, "top1_agreement": top1}

    return {"model": model_path, "system": sys_.name, "batch": int(x.shape[0]),
            "precision": {"weights": fmt.weights.value, "activations": fmt.activations.value},
            "output_shape": list(want.shape), "vs_onnxruntime_fp32": compare(got),
            "fp32_reference_vs_onnxruntime": compare(exact)}


def execute_command(args: argparse.Namespace) -> int:
    if not args.model.endswith(".onnx"):
        raise TegelError(f"{args.model}: tegel execute takes an .onnx file")
    card = execute_onnx(args.model, _load_input(args.input), args.on, args.precision)
    if args.json:
        print(jsonout.dumps(card, indent=2))
        return 0
    print(report.execute_text(card))
    return 0
