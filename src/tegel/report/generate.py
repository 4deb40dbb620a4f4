"""`tegel generate`, `tegel accuracy` and `tegel execute`: the functional executor's results
as text and JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tegel.report import jsonout
from tegel.report.text import si, table


def generate_dict(gen: Any, model: str, system: str, prompt: list[int]) -> dict[str, Any]:
    """`tegel generate --json`: token ids, last logits, the simulated run and executor counts."""
    sim = gen.simulated.to_dict() if gen.simulated else None
    return {
        "model": model, "system": system, "prompt_ids": prompt, "token_ids": list(gen.token_ids),
        "last_logits": [float(v) for v in gen.last_logits],
        "simulated_time_s": sim["e2e_latency_s"] if sim else None,
        "simulated_energy_j": sim["energy_j_per_token"] * len(gen.token_ids) if sim else None,
        "simulation": sim, "simulation_note": gen.simulation_note,
        "executor": {"gemm_blocks": gen.stats.gemm_blocks, "partial_sums": gen.stats.partial_sums,
                     "allreduce_bytes": gen.stats.allreduce_bytes,
                     "stage_transfer_bytes": gen.stats.stage_transfer_bytes},
    }


def generate_text(gen: Any, out: dict[str, Any]) -> str:
    """`tegel generate`: the tokens, the simulated time and energy, the executor's counts."""
    sim = out["simulation"]
    lines = ["token_ids: " + ",".join(map(str, gen.token_ids))]
    if sim:
        lines.append(f"simulated on {sim['system']} ({sim['precision']['weights']}): "
                     f"{si(sim['e2e_latency_s'], 's')}, {si(out['simulated_energy_j'], 'J')}, "
                     f"TTFT {si(sim['ttft_s'], 's')}, TPOT {si(sim['tpot_s'], 's')}")
    else:
        lines.append(str(gen.simulation_note))
    lines.append(f"executor: {gen.stats.gemm_blocks} GEMM blocks, {gen.stats.partial_sums} "
                 "partial sums reduced")
    return "\n".join(lines)


def accuracy_json(acc: Any, model: str, system: str) -> str:
    """`tegel accuracy --json`: the Accuracy's fields with the model and system."""
    return jsonout.dumps({"model": model, "system": system, **asdict(acc)}, indent=2)


def accuracy_text(acc: Any) -> str:
    """`tegel accuracy`: agreement, logit errors and perplexity against fp32."""
    return table(["measure", "value"], [
        ["format", acc.precision], ["greedy steps", acc.steps],
        ["top-1 agreement with fp32", f"{acc.top1_agreement:.1%}"],
        ["max |logit error|", f"{acc.max_logit_error:.4g}"],
        ["mean |logit error|", f"{acc.mean_logit_error:.4g}"],
        [f"perplexity ({acc.text_tokens} tokens)", f"{acc.perplexity:.4g}"],
        ["perplexity, fp32", f"{acc.reference_perplexity:.4g}"]])


def execute_text(card: dict[str, Any]) -> str:
    """`tegel execute`: errors and top-1 agreement against onnxruntime fp32."""
    fmt, r, ref = card["precision"], card["vs_onnxruntime_fp32"], card["fp32_reference_vs_onnxruntime"]
    return (f"{card['model']} on {card['system']}, batch {card['batch']}, weights "
            f"{fmt['weights']}, activations {fmt['activations']}: vs onnxruntime fp32 max abs "
            f"error {r['max_abs_error']:.3g} (rel {r['max_rel_error']:.3g}), top-1 agreement "
            f"{r['top1_agreement']:.0%}\n(tegel's fp32 reference: max abs error "
            f"{ref['max_abs_error']:.3g}, top-1 {ref['top1_agreement']:.0%})")
