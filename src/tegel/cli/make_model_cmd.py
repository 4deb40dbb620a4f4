"""`tegel make-model FAMILY DIR`: a random-weight Hugging Face folder to try `tegel generate` on."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-model", help="write a random-weight Hugging Face model folder",
                       description="Write config.json (a shipped config of the family, shrunk), "
                       "model.safetensors (seeded random weights) and a byte-level BPE tokenizer "
                       "(when the `tokenizers` package is installed) to DIR, so `tegel generate "
                       "DIR` runs without downloading anything.")
    p.add_argument("family", help="a family (model_type: llama, qwen3_moe, gemma2, ...) or a "
                   "shipped model name whose config to shrink")
    p.add_argument("dir", help="folder to write (created if missing)")
    p.add_argument("--size", default="tiny", help="tiny or small (tiny)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights (0)")
    p.add_argument("--no-tokenizer", action="store_true", help="write no tokenizer")
    p.set_defaults(func=make_model_command)


def make_model_command(args: argparse.Namespace) -> int:
    from tegel.workload.random_model import random_folder

    cfg, written = random_folder(args.family, args.dir, args.size, args.seed,
                                 tokenizer=not args.no_tokenizer)
    print(f"wrote {args.dir}: {', '.join(written)} ({cfg.model_type}, {cfg.num_layers} layers, "
          f"hidden {cfg.hidden_size}, vocab {cfg.vocab_size}, seed {args.seed})")
    if "tokenizer.json" not in written and not args.no_tokenizer:
        print("no tokenizer written (pip install tokenizers for one); use --prompt-ids")
    prompt = "--prompt 'the data moves'" if "tokenizer.json" in written else "--prompt-ids 1,2,3"
    print(f"try: tegel generate {args.dir} --on h100-sxm {prompt} --max-new-tokens 8")
    return 0
