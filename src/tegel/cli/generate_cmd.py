"""`tegel generate` and `tegel accuracy`: a Hugging Face folder run on a simulated machine."""

from __future__ import annotations

import argparse
from typing import Any

from tegel.cli import argtypes
from tegel.report import generate as report
from tegel.report import jsonout
from tegel.report.progress import Bar


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", help="Hugging Face-format folder: config.json + *.safetensors")
    p.add_argument("--on", required=True, metavar="SYSTEM", help="system or chip preset, or YAML")
    p.add_argument("--prompt-ids", metavar="IDS", help="comma-separated prompt token ids")
    p.add_argument("--prompt", metavar="TEXT", help="prompt text (needs tokenizer.json in the folder)")
    p.add_argument("--precision", default="auto", help="weights, activations and KV format (auto)")
    p.add_argument("--tp", type=argtypes.count, help="tensor-parallel degree (default: chosen)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="greedy generation on the functional executor",
                       description="Load a Hugging Face folder, compile it for a system, run "
                       "prefill and greedy decode on the functional executor in the plan's number "
                       "formats, and print the token ids with the simulated time and energy.")
    _common(g)
    g.add_argument("--max-new-tokens", type=argtypes.count, default=16, metavar="N", help="tokens (16)")
    g.set_defaults(func=generate_command)
    a = sub.add_parser("accuracy", help="what a number format costs in quality",
                       description="Agreement of a number format with fp32: top-1 over greedy "
                       "steps, logit errors, and perplexity on a text tegel ships.")
    _common(a)
    a.add_argument("--steps", type=argtypes.count, default=16, metavar="N", help="greedy steps (16)")
    a.set_defaults(func=accuracy_command)


def _prompt(args: argparse.Namespace, vocab: int) -> list[int]:
    from pathlib import Path

    from tegel.errors import TegelError

    if args.prompt_ids and args.prompt:
        raise TegelError("give --prompt-ids or --prompt, not both")
    if args.prompt_ids:
        try:
            return [int(t) for t in args.prompt_ids.split(",") if t.strip()]
        except ValueError:
            raise TegelError(f"--prompt-ids: expected comma-separated integers, "
                             f"got {args.prompt_ids!r}") from None
    if args.prompt:
        tok = Path(args.model_dir) / "tokenizer.json"
        if not tok.is_file():
            raise TegelError(f"--prompt needs {tok}; give --prompt-ids instead")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise TegelError("--prompt needs the `tokenizers` package: pip install tokenizers") from None
        return list(Tokenizer.from_file(str(tok)).encode(args.prompt).ids)
    raise TegelError("give the prompt as --prompt-ids 1,2,3 (or --prompt TEXT with a tokenizer)")


def _load(args: argparse.Namespace) -> Any:
    from tegel.workload.weights import load_hf_folder

    cfg, weights = load_hf_folder(args.model_dir)
    return cfg, weights, _prompt(args, cfg.vocab_size)


def generate_command(args: argparse.Namespace) -> int:
    from tegel.serving.generate import generate

    cfg, weights, prompt = _load(args)
    with Bar("generating (tokens)", total=args.max_new_tokens, quiet=args.json) as bar:
        gen = generate(cfg, weights, args.on, prompt, args.max_new_tokens, args.precision,
                       tp=args.tp, progress=bar.update)
    out = report.generate_dict(gen, cfg.name, args.on, prompt)
    print(jsonout.dumps(out, indent=2) if args.json else report.generate_text(gen, out))
    return 0


def accuracy_command(args: argparse.Namespace) -> int:
    from tegel.serving.generate import accuracy

    cfg, weights, prompt = _load(args)
    acc = accuracy(cfg, weights, args.on, args.precision, prompt, args.steps, args.model_dir)
    print(report.accuracy_json(acc, cfg.name, args.on) if args.json
          else report.accuracy_text(acc))
    return 0
