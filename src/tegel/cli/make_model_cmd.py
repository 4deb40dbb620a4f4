"""`tegel make-model FAMILY DIR`: a random-weight Hugging Face folder to try `tegel generate` on;
`tegel make-model resnet50 resnet50.onnx`: a zoo vision network as an ONNX file."""

from __future__ import annotations

import argparse

from tegel.cli import argtypes
from tegel.cli.outputs import add_force


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-model", help="write a random-weight Hugging Face model folder "
                       "or a vision network as ONNX",
                       description="Write config.json (a shipped config of the family, shrunk), "
                       "model.safetensors (seeded random weights) and a byte-level BPE tokenizer "
                       "(when the `tokenizers` package is installed) to DIR, so `tegel generate "
                       "DIR` runs without downloading anything. For a vision network (resnet18, "
                       "resnet50, mobilenet_v2, vit_b_16: torchvision's architectures in plain "
                       "torch.nn) write DIR as an ONNX file with seeded random weights, 224x224 "
                       "input, for `tegel inspect` and `tegel run`.")
    p.add_argument("family", help="a family (model_type: llama, qwen3_moe, gemma2, ...), a "
                   "shipped model name whose config to shrink, or a vision network")
    p.add_argument("dir", help="folder to write (created if missing), or the .onnx file")
    p.add_argument("--size", default="tiny", help="tiny or small (tiny)")
    p.add_argument("--seed", type=argtypes.bounded_int(0, 2**63 - 1), default=0,
                   help="random seed of the weights (0)")
    p.add_argument("--no-tokenizer", action="store_true", help="write no tokenizer")
    p.add_argument("--batch", type=argtypes.count, metavar="N",
                   help="vision networks: a fixed batch N (default: a dynamic batch dimension)")
    add_force(p)
    p.set_defaults(func=make_model_command)


def make_model_command(args: argparse.Namespace) -> int:
    from tegel.cli.outputs import check_target
    from tegel.errors import TegelError
    from tegel.workload.random_model import FOLDER_FILES, random_folder
    from tegel.workload.zoo import zoo_names

    onnx = args.dir.lower().endswith(".onnx")
    check_target(args.dir, "make-model DIR", directory=not onnx, force=args.force,
                 names=() if onnx else FOLDER_FILES)
    if args.family in zoo_names():
        return _vision(args)
    if args.batch is not None:
        raise TegelError("--batch: only for vision networks (" + ", ".join(zoo_names()) + ")")

    cfg, written = random_folder(args.family, args.dir, args.size, args.seed,
                                 tokenizer=not args.no_tokenizer)
    print(f"wrote {args.dir}: {', '.join(written)} ({cfg.model_type}, {cfg.num_layers} layers, "
          f"hidden {cfg.hidden_size}, vocab {cfg.vocab_size}, seed {args.seed})")
    if "tokenizer.json" not in written and not args.no_tokenizer:
        print("no tokenizer written (pip install tokenizers for one); use --prompt-ids")
    prompt = "--prompt 'the data moves'" if "tokenizer.json" in written else "--prompt-ids 1,2,3"
    print(f"try: tegel generate {args.dir} --on h100-sxm {prompt} --max-new-tokens 8")
    return 0


def _vision(args: argparse.Namespace) -> int:
    from tegel.atomic import atomic_path
    from tegel.errors import TegelError
    from tegel.workload.zoo import export_onnx

    with atomic_path(args.dir, "make-model FILE") as tmp:  # no partial .onnx file
        try:
            exporter = export_onnx(args.family, str(tmp), args.seed, args.batch)
        except TegelError as err:
            raise TegelError(str(err).replace(str(tmp), args.dir)) from None
    batch = args.batch if args.batch is not None else "dynamic"
    print(f"wrote {args.dir}: {args.family}, seed {args.seed}, batch {batch}, input 3x224x224 "
          f"(torch.onnx {exporter} exporter)")
    print(f"try: tegel inspect {args.dir}")
    return 0
