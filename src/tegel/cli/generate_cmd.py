"""`tegel generate` and `tegel accuracy`: a Hugging Face folder run on a simulated machine."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tegel.report.text import si, table


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", help="Hugging Face-format folder: config.json + *.safetensors")
    p.add_argument("--on", required=True, metavar="SYSTEM", help="system or chip preset, or YAML")
    p.add_argument("--prompt-ids", metavar="IDS", help="comma-separated prompt token ids")
    p.add_argument("--prompt", metavar="TEXT", help="prompt text (needs tokenizer.json in the folder)")
    p.add_argument("--precision", default="auto", help="weights, activations and KV format (auto)")
    p.add_argument("--tp", type=int, help="tensor-parallel degree (default: chosen)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="greedy generation on the functional executor",
                       description="Load a Hugging Face folder, compile it for a system, run "
                       "prefill and greedy decode on the functional executor in the plan's number "
                       "formats, and print the token ids with the simulated time and energy.")
    _common(g)
    g.add_argument("--max-new-tokens", type=int, default=16, metavar="N", help="tokens (16)")
    g.set_defaults(func=generate_command)
    a = sub.add_parser("accuracy", help="what a number format costs in quality",
                       description="Agreement of a number format with fp32: top-1 over greedy "
                       "steps, logit errors, and perplexity on a text tegel ships.")
    _common(a)
    a.add_argument("--steps", type=int, default=16, metavar="N", help="greedy steps (16)")
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
    gen = generate(cfg, weights, args.on, prompt, args.max_new_tokens, args.precision, tp=args.tp)
    sim = gen.simulated.to_dict() if gen.simulated else None
    out = {
        "model": cfg.name, "system": args.on, "prompt_ids": prompt, "token_ids": list(gen.token_ids),
        "last_logits": [float(v) for v in gen.last_logits],
        "simulated_time_s": sim["e2e_latency_s"] if sim else None,
        "simulated_energy_j": sim["energy_j_per_token"] * len(gen.token_ids) if sim else None,
        "simulation": sim, "simulation_note": gen.simulation_note,
        "executor": {"gemm_blocks": gen.stats.gemm_blocks, "partial_sums": gen.stats.partial_sums,
                     "allreduce_bytes": gen.stats.allreduce_bytes,
                     "stage_transfer_bytes": gen.stats.stage_transfer_bytes},
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("token_ids:", ",".join(map(str, gen.token_ids)))
    if sim:
        print(f"simulated on {sim['system']} ({sim['precision']['weights']}): "
              f"{si(sim['e2e_latency_s'], 's')}, {si(out['simulated_energy_j'], 'J')}, "
              f"TTFT {si(sim['ttft_s'], 's')}, TPOT {si(sim['tpot_s'], 's')}")
    else:
        print(gen.simulation_note)
    print(f"executor: {gen.stats.gemm_blocks} GEMM blocks, {gen.stats.partial_sums} partial sums reduced")
    return 0


def accuracy_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tegel.serving.generate import accuracy

    cfg, weights, prompt = _load(args)
    acc = accuracy(cfg, weights, args.on, args.precision, prompt, args.steps, args.model_dir)
    if args.json:
        print(json.dumps({"model": cfg.name, "system": args.on, **asdict(acc)}, indent=2))
        return 0
    print(table(["measure", "value"], [
        ["format", acc.precision], ["greedy steps", acc.steps],
        ["top-1 agreement with fp32", f"{acc.top1_agreement:.1%}"],
        ["max |logit error|", f"{acc.max_logit_error:.4g}"],
        ["mean |logit error|", f"{acc.mean_logit_error:.4g}"],
        [f"perplexity ({acc.text_tokens} tokens)", f"{acc.perplexity:.4g}"],
        ["perplexity, fp32", f"{acc.reference_perplexity:.4g}"]]))
    return 0
