"""What an exploration found, for a person and for a program: the Pareto front, what rules
points out, and the best point against the baseline with the bound that holds it back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tegel.evaluate.cost import CATEGORIES
from tegel.explore.metrics import CONSTRAINTS, METRICS
from tegel.explore.point import PointResult

TARGET_RATIO = 100.0  # the mission's question: 100x a GPU system's tokens per joule


def pareto(points: Sequence[PointResult], objectives: Sequence[tuple[str, str]]
           ) -> list[PointResult]:
    """The feasible points no other feasible point beats on every objective, sorted by the
    first objective (best first)."""
    signs = [1.0 if s == "max" else -1.0 for _, s in objectives]
    names = [n for n, _ in objectives]
    ok = [p for p in points if p.feasible and all(n in p.metrics for n in names)]
    vals = [tuple(s * p.metrics[n] for n, s in zip(names, signs, strict=True)) for p in ok]
    front = []
    for i, v in enumerate(vals):
        dominated = any(all(a >= b for a, b in zip(w, v, strict=True)) and w != v
                        for j, w in enumerate(vals) if j != i)
        if not dominated:
            front.append((v, ok[i]))
    front.sort(key=lambda x: x[0], reverse=True)
    return [p for _, p in front]


def ruled_out(points: Sequence[PointResult]) -> dict[str, Any]:
    """How many points each constraint rules out (a point may miss several), how many it alone
    rules out, and how many failed with an error."""
    n = len(points)
    every: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    for p in points:
        every.update(p.violated)
        if len(p.violated) == 1:
            alone.update(p.violated)
    errors = sum(p.error is not None for p in points)
    return {"points": n, "feasible": sum(p.feasible for p in points), "errors": errors,
            "constraints": {c: {"points": k, "share": k / n if n else 0.0,
                                "only_this": alone[c]} for c, k in every.most_common()}}


def point_dict(p: PointResult) -> dict[str, Any]:
    return {"key": p.key, "trial": p.trial, "feasible": p.feasible, "params": p.params,
            "metrics": p.metrics, "violated": list(p.violated), "binding": list(p.binding),
            "error": p.error, "elapsed_s": p.elapsed_s}


def against(best: PointResult, base: dict[str, float],
            points: Sequence[PointResult]) -> dict[str, Any]:
    """The best design against the baseline in tokens/J, and, below TARGET_RATIO, what holds
    it back: the floor (the most any design at the node could reach), the best design's
    energy by category, and the constraints that rule designs out or bind."""
    m = best.metrics
    ratio = base["energy_j_per_token"] / m["energy_j_per_token"]
    floor_ratio = base["energy_j_per_token"] / m["energy_floor_j_per_token"]
    parts = {c.value: m.get(f"energy_{c.value}_j_per_token", 0.0) for c in CATEGORIES}
    total = m["energy_j_per_token"]
    shares = {k: v / total for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}
    # above the floor: arithmetic beyond the floor's, everything else whole (the floor's weight
    # reads are a lower bound on the movement terms together, not on any one of them)
    excess = dict(parts)
    excess["compute"] = max(0.0, parts["compute"] - m.get("energy_floor_arithmetic_j_per_token", 0.0))
    top = max(excess, key=lambda k: excess[k])
    share = excess[top] / total
    # tokens/J if that term cost nothing (no lower than the floor): how much it holds back
    without_top = base["energy_j_per_token"] / max(total - excess[top],
                                                   m["energy_floor_j_per_token"])
    out: dict[str, Any] = {
        "best_tokens_per_j": m["tokens_per_j"], "baseline_tokens_per_j": base["tokens_per_j"],
        "ratio": ratio, "target_ratio": TARGET_RATIO, "reaches_target": ratio >= TARGET_RATIO,
        "floor_ratio": floor_ratio, "floor_j_per_token": m["energy_floor_j_per_token"],
        "energy_share": shares, "largest_term_above_floor": top, "largest_term_share": share,
        "ratio_without_largest_term": without_top,
        "binding": list(best.binding), "ruled_out": ruled_out(points)["constraints"]}
    if ratio >= TARGET_RATIO:
        out["verdict"] = f"{ratio:.1f}x the baseline's tokens/J: at or beyond {TARGET_RATIO:g}x"
    elif floor_ratio < TARGET_RATIO:
        out["verdict"] = (f"{ratio:.1f}x; {TARGET_RATIO:g}x is below the energy floor at this "
                          f"node and batch (at most {floor_ratio:.1f}x for any design)")
    else:
        out["verdict"] = (f"{ratio:.1f}x; held back most by {top} energy above the floor "
                          f"({share:.0%} of the best design's J/token; without it "
                          f"{without_top:.1f}x); the floor allows {floor_ratio:.0f}x")
    return out


def metric_unit(name: str) -> str:
    return METRICS[name].unit if name in METRICS else ""


def constraint_names() -> list[str]:
    return list(CONSTRAINTS)
