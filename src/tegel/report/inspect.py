"""`tegel inspect`: the text of a model card, of the shipped models' list and of an ONNX
graph's card (the cards are dicts: `workload.summary.summarize`, `graph_card.graph_card`)."""

from __future__ import annotations

from typing import Any

from tegel.report.text import si, table


def list_text(records: list[dict[str, Any]]) -> str:
    """`tegel inspect --list`: model, family, parameters, active parameters, experts."""
    lines = [[r["model"], r["family"], si(r["parameters"]), si(r["active_parameters"]),
              f"{r['experts_per_token']} of {r['experts']}" if r["experts"] > 0 else "-"]
             for r in records]
    return table(["model", "family", "parameters", "active", "experts"], lines)


def _kv(c: dict) -> str:
    """What a token caches per layer: KV heads, or MLA's one latent."""
    if c.get("kv_latent_dim"):
        return f"latent KV {c['kv_latent_dim']} + rope key per token (MLA)"
    return f"{c['kv_heads']} KV heads"


def render_text(c: dict) -> str:
    """`tegel inspect MODEL`: a model card (`workload.summary.summarize` and its notes)."""
    moe = f", {c['experts']} experts, top-{c['experts_per_token']}" if c["experts"] else ""
    head = (f"{c['model']} ({c['model_type']}): {si(c['parameters'])} parameters, "
            f"{si(c['active_parameters'])} active per token{moe}\n"
            f"{c['layers']} layers, hidden {c['hidden_size']}, {c['attention_heads']} heads "
            f"x {c['head_dim']} / {_kv(c)}, vocab {c['vocab_size']}")
    weights = table(["weights", "bytes"], [[k, si(v, "B")] for k, v in c["weight_bytes"].items()])
    kv = table(["KV cache", "bytes/token"],
               [[k, si(v, "B")] for k, v in c["kv_cache_bytes_per_token_by_format"].items()])
    rows = []
    for name in ("prefill", "decode"):
        p = c[name]
        rows.append([f"{name} B={p['batch']} L={p['new_tokens']} K={p['kv_length']}",
                     si(p["flops_per_token"], "FLOP"), si(p["graph_bytes_per_token"], "B"),
                     f"{p['arithmetic_intensity_flops_per_byte']:.3g}"])
    phases = table(["phase (" + c["precision"]["weights"] + ")", "FLOPs/token",
                    "min bytes/token", "FLOP/B"], rows)
    notes = [f"note: {n}" for n in c["notes"]]
    return "\n\n".join([head, weights, kv, phases, *notes])


def onnx_text(model: str, card: dict[str, Any]) -> str:
    """`tegel inspect MODEL.onnx`: totals, then MACs, FLOPs and bytes by op kind."""
    shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in card["inputs"].items())
    head = (f"{model}: {si(card['parameters'])} parameters ({si(card['weight_bytes'], 'B')} "
            f"fp32), {si(card['macs'])}MAC, {si(card['flops'], 'FLOP')}; input {shapes}\n"
            f"min bytes: {si(card['graph_bytes'], 'B')} (weights, inputs, outputs once), "
            f"{si(card['op_bytes'], 'B')} (each op its inputs and outputs)")
    rows = [[kind, r["count"], si(r["macs"]) if r["macs"] else "-", si(r["flops"], "FLOP"),
             si(r["op_bytes"], "B")] for kind, r in card["ops_by_kind"].items()]
    return head + "\n\n" + table(["op kind", "ops", "MACs", "FLOPs", "op bytes"], rows)
