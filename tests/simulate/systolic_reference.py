"""A register-level, cycle-by-cycle model of an R x C systolic array, to check the closed forms
of `tegel.hardware.systolic` against. Small sizes only: every register is a Python object and
every cycle a loop iteration.

The controller's only decision is to start folds `interval` cycles apart. Operands move one PE
per cycle; the stationary operand is loaded (or the results drained) through double-buffered
shadow registers; a `Hazard` is raised whenever a PE would read a value that is not there yet
or overwrite one still in use. Each model returns the product and the cycles until the last
output has left the array.
"""

from __future__ import annotations

import math

import numpy as np


class Hazard(AssertionError):
    """A register read before it was written, or overwritten while still in use."""


def _arriving(starts: list[int], t: int, offset: int, length: int) -> tuple[int, int] | None:
    """(fold, index) of the streamed item entering at `offset` cycles of skew at cycle t."""
    hits = [(f, t - s - offset) for f, s in enumerate(starts) if 0 <= t - s - offset < length]
    if len(hits) > 1:
        raise Hazard(f"two folds' operands in one register at cycle {t}")
    return hits[0] if hits else None


def weight_stationary(a: np.ndarray, w: np.ndarray, rows: int, cols: int,
                      interval: int) -> tuple[np.ndarray, int]:
    """out = a @ w with w tiles in the PEs; a rows stream in from the left, sums flow down.

    A column's next weight tile shifts down its load chain (one row per cycle, R cycles) and is
    latched into the column's shadow registers once they are all free; a PE swaps its shadow in
    when the first input of the new fold reaches it."""
    m_dim, k_dim = a.shape
    n_dim = w.shape[1]
    folds = [(kb, nb) for kb in range(math.ceil(k_dim / rows)) for nb in range(math.ceil(n_dim / cols))]
    out = np.zeros((m_dim, n_dim), dtype=np.int64)
    starts = [rows + f * interval for f in range(len(folds))]  # the first tile takes R to load
    active = [[-1] * cols for _ in range(rows)]  # fold of the weight each PE multiplies by
    shadow = [[-1] * cols for _ in range(rows)]  # fold latched in its shadow (-1: free)
    chain = [[0, 0] for _ in range(cols)]  # per column: fold being shifted in, rows shifted
    a_reg: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
    p_reg: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
    outputs, t, last = 0, 0, -1
    while outputs < len(folds) * m_dim * cols:
        if t > starts[-1] + m_dim + 4 * (rows + cols):
            raise Hazard("the array stalled")
        new_a: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
        new_p: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                if c == 0:
                    hit = _arriving(starts, t, r, m_dim)
                    arriving = None
                    if hit is not None:
                        f, m = hit
                        k = folds[f][0] * rows + r
                        arriving = (f, m, int(a[m, k]) if k < k_dim else 0)
                else:
                    arriving = a_reg[r][c - 1]
                new_a[r][c] = arriving
                if arriving is None:
                    continue
                f, m, x = arriving
                if active[r][c] != f:
                    if shadow[r][c] != f:
                        raise Hazard(f"PE({r},{c}) needs fold {f}'s weight at cycle {t}")
                    active[r][c], shadow[r][c] = f, -1
                above = p_reg[r - 1][c] if r else (f, m, 0)
                if above is None or above[:2] != (f, m):
                    raise Hazard(f"PE({r},{c}) partial sum out of step at cycle {t}")
                k, n = folds[f][0] * rows + r, folds[f][1] * cols + c
                weight = int(w[k, n]) if k < k_dim and n < n_dim else 0
                new_p[r][c] = (f, m, above[2] + x * weight)
        for c in range(cols):
            bottom = new_p[rows - 1][c]
            if bottom is not None:
                f, m, value = bottom
                n = folds[f][1] * cols + c
                if n < n_dim:
                    out[m, n] += value
                outputs, last = outputs + 1, t
            fold, shifted = chain[c]
            if fold < len(folds):
                shifted = min(rows, shifted + 1)
                if shifted == rows and all(shadow[r][c] == -1 for r in range(rows)):
                    for r in range(rows):
                        shadow[r][c] = fold
                    fold, shifted = fold + 1, 0
                chain[c] = [fold, shifted]
        a_reg, p_reg, t = new_a, new_p, t + 1
    return out, last + 1


def output_stationary(a: np.ndarray, w: np.ndarray, rows: int, cols: int,
                      interval: int) -> tuple[np.ndarray, int]:
    """out = a @ w with an output tile accumulating in the PEs; a streams in from the left, w
    from the top. A finished sum moves to its PE's shadow; once a column's shadows all hold a
    fold's sums they shift down and leave through the bottom, one per cycle."""
    m_dim, k_dim = a.shape
    n_dim = w.shape[1]
    folds = [(mb, nb) for mb in range(math.ceil(m_dim / rows)) for nb in range(math.ceil(n_dim / cols))]
    out = np.zeros((m_dim, n_dim), dtype=np.int64)
    starts = [f * interval for f in range(len(folds))]
    acc: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
    shadow: list[list[tuple[int, int, int] | None]] = [[None] * cols for _ in range(rows)]
    draining: list[int | None] = [None] * cols  # fold whose sums a column is shifting out
    outputs, t, last = 0, 0, -1
    while outputs < len(folds) * rows * cols:
        if t > starts[-1] + k_dim + 4 * (rows + cols):
            raise Hazard("the array stalled")
        for c in range(cols):
            fold = draining[c]
            if fold is None:
                continue
            bottom = shadow[rows - 1][c]
            if bottom is not None and bottom[0] == fold:
                _, i, value = bottom
                m, n = folds[fold][0] * rows + i, folds[fold][1] * cols + c
                if m < m_dim and n < n_dim:
                    out[m, n] = value
                shadow[rows - 1][c], outputs, last = None, outputs + 1, t
            for r in range(rows - 1, 0, -1):
                above = shadow[r - 1][c]
                if shadow[r][c] is None and above is not None and above[0] == fold:
                    shadow[r][c], shadow[r - 1][c] = above, None
            if all(s is None or s[0] != fold for s in (shadow[r][c] for r in range(rows))):
                draining[c] = None
        for r in range(rows):
            for c in range(cols):
                hit = _arriving(starts, t, r + c, k_dim)
                if hit is None:
                    continue
                f, k = hit
                m, n = folds[f][0] * rows + r, folds[f][1] * cols + c
                product = (int(a[m, k]) if m < m_dim else 0) * (int(w[k, n]) if n < n_dim else 0)
                held = acc[r][c]
                if k == 0:
                    if held is not None:
                        raise Hazard(f"PE({r},{c}) accumulator busy at cycle {t}")
                    held = (f, 0, 0)
                if held is None or held[:2] != (f, k):
                    raise Hazard(f"PE({r},{c}) out of step at cycle {t}")
                acc[r][c] = (f, k + 1, held[2] + product)
                if k == k_dim - 1:
                    older = [s for s in (shadow[i][c] for i in range(r + 1)) if s and s[0] != f]
                    if older:
                        raise Hazard(f"PE({r},{c}) shadow still holds fold {older[0][0]} at cycle {t}")
                    shadow[r][c], acc[r][c] = (f, r, held[2] + product), None
        for c in range(cols):
            col = [shadow[r][c] for r in range(rows)]
            if draining[c] is None and all(s is not None for s in col) and len({s[0] for s in col}) == 1:  # type: ignore[index]
                draining[c] = col[0][0]  # type: ignore[index]
        t += 1
    return out, last + 1


def input_stationary(a: np.ndarray, w: np.ndarray, rows: int, cols: int,
                     interval: int) -> tuple[np.ndarray, int]:
    """out = a @ w with input tiles in the PEs: the weight-stationary array computing
    out^T = w^T a^T (a^T held, w^T streamed)."""
    out_t, cycles = weight_stationary(w.T, a.T, rows, cols, interval)
    return out_t.T, cycles
