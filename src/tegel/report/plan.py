"""`tegel plan` and `tegel gemm`: a compiled plan and a GEMM's systolic cycles as text/JSON."""

from __future__ import annotations

from typing import Any

from tegel.report import jsonout


def to_json(compiled: Any) -> str:
    """`tegel plan --json`: the compiled plan's dict (`mapping.compiled.to_dict`)."""
    from tegel.mapping.compiled import to_dict

    return jsonout.dumps(to_dict(compiled), indent=2)


def render_text(compiled: Any, brief: bool = False) -> str:
    """`tegel plan`: stages, regions, splits, homes and routes (without the ops when `brief`)."""
    from tegel.mapping.compiled import describe

    return describe(compiled, not brief)


def gemm_json(result: Any) -> str:
    """`tegel gemm --json`: the GemmCycles' `to_dict()`."""
    return jsonout.dumps(result.to_dict(), indent=2)


def gemm_text(result: Any, m: int, n: int, k: int, rows: int, cols: int) -> str:
    """`tegel gemm`: folds, cycles split into fill, compute and drain, utilisation."""
    overlap = "double-buffered" if result.fold_overlap == "double_buffered" else "not overlapped"
    out = [f"GEMM {m}x{n}x{k} on a {rows}x{cols} {result.dataflow.replace('_', '-')} "
           f"array: {result.folds} fold(s) of {result.stream} streamed, folds {overlap}",
           f"cycles       {result.cycles}"]
    out += [f"  {label:<10} {value}" for label, value in
            (("fill", result.fill), ("compute", result.compute), ("drain", result.drain))]
    if result.fold_overlap == "none":
        out.append(f"SCALE-Sim v3 'Total Cycles' {result.scalesim_total_cycles} (the index of the "
                   "last cycle, counted from 0)")
    out.append(f"utilisation  {result.utilisation:.1%}")
    return "\n".join(out)
