"""Routes of transfers: on a chip's network between two regions of tiles, and between chips.

On-chip rules by topology (all aggregate: a route is a list of link bundles, one per grid line
crossed, never one entry per tile):
- mesh: dimension-ordered (XY) routing — along the source region's rows to the destination's
  columns, then along those columns to the destination's rows;
- torus and ring: the same with wrap-around links, each leg taking the shorter way round (a
  ring is a torus of one row or one column);
- crossbar and hierarchical: out of the source region's tile ports, into the destination's.
Chip to chip by the system's scale-up topology: `full` a direct link to the peer; `switch` and
`dragonfly` an uplink to the switch and a downlink from it; `ring` hop by hop the shorter way;
`torus`/`mesh` hop by hop in dimension order over `torus_dims`. Chips in different scale-up
domains (`System.scale_up_domain`) talk through the scale-out network's switch instead.
"""

from __future__ import annotations

import math

from tegel.errors import TegelError
from tegel.hardware import Chip, System
from tegel.mapping.compiled import Rect
from tegel.mapping.plan import Link


def noc_links(chip: Chip) -> float:
    """Directed links of a chip's network (mesh: both directions of every neighbour pair; torus:
    4 per tile; crossbar, ring, hierarchical: one port per tile). Both evaluators use this
    count, so a region's share of the links is the same in each."""
    rows, cols = chip.tiles.rows, chip.tiles.cols
    topo = chip.noc.topology
    if topo == "mesh":
        return 2.0 * (rows * (cols - 1) + cols * (rows - 1))
    if topo == "torus":
        return 4.0 * rows * cols
    return float(chip.tile_count)


def _leg(a: tuple[int, int], b: tuple[int, int], size: int, wrap: bool) -> tuple[int, list[int]]:
    """(direction, lines crossed) to move from span a = [lo, hi) to span b along one axis.

    Line x lies between positions x-1 and x (line 0 is the wrap-around link of a torus)."""
    (a_lo, a_hi), (b_lo, b_hi) = a, b
    if a_lo < b_hi and b_lo < a_hi:
        return 0, []
    plus = (b_lo - a_hi + 1) % size if wrap else (b_lo - a_hi + 1 if b_lo >= a_hi else None)
    minus = (a_lo - b_hi + 1) % size if wrap else (a_lo - b_hi + 1 if b_hi <= a_lo else None)
    if minus is None or (plus is not None and plus <= minus):
        return 1, [(a_hi + i) % size for i in range(plus or 0)]
    return -1, [(a_lo - i) % size for i in range(minus)]


def noc_route(src: Rect, dst: Rect, chip: Chip) -> tuple[Link, ...]:
    """Link bundles a transfer from region `src` to region `dst` of the same chip crosses."""
    noc = chip.noc
    bw, hop_s = noc.link_bytes_per_s, noc.hop_latency_s
    if noc.topology in ("crossbar", "hierarchical"):
        cols = chip.tiles.cols
        out = Link("xbar", src.chip, src.row * cols + src.col, 1, 0, src.tiles, bw * src.tiles, hop_s)
        into = Link("xbar", dst.chip, dst.row * cols + dst.col, -1, 0, dst.tiles, bw * dst.tiles,
                    hop_s if noc.topology == "hierarchical" else 0.0)
        return (out, into)
    wrap = noc.topology in ("torus", "ring")
    rows, cols = chip.tiles.rows, chip.tiles.cols
    x_dir, x_lines = _leg((src.col, src.col_end), (dst.col, dst.col_end), cols, wrap)
    y_dir, y_lines = _leg((src.row, src.row_end), (dst.row, dst.row_end), rows, wrap)
    if x_lines:
        y_lo, y_hi = dst.col, dst.col_end
    else:  # already in the destination's columns: move down the columns both share
        y_lo, y_hi = max(src.col, dst.col), min(src.col_end, dst.col_end)
    route = [Link("x", src.chip, x, x_dir, src.row, src.row_end, bw * src.rows, hop_s) for x in x_lines]
    route += [Link("y", src.chip, y, y_dir, y_lo, y_hi, bw * (y_hi - y_lo), hop_s) for y in y_lines]
    return tuple(route)


def chip_route(src: int, dst: int, system: System) -> tuple[Link, ...]:
    """Chip-to-chip links from chip `src` to chip `dst` of `system` (module doc for the rules)."""
    link = system.scale_up
    if link is None:
        raise TegelError(f"{system.name}: stages on chips {src} and {dst} need chip-to-chip links, "
                         "but the system has none")
    n = system.scale_up_domain
    if src // n != dst // n:  # different scale-up domains: out through the scale-out network
        out = system.scale_out
        if out is None:
            raise TegelError(f"{system.name}: chips {src} and {dst} are in different scale-up "
                             "domains and the system has no scale_out network")
        return (Link("c2c", src, -2, 1, 0, 1, out.link_bytes_per_s, out.latency_s),  # -2: the
                Link("c2c", dst, -2, -1, 0, 1, out.link_bytes_per_s, 0.0))  # scale-out switch port
    base, src, dst = src - src % n, src % n, dst % n  # torus coordinates within the domain
    bw, lat = link.link_bytes_per_s, link.latency_s
    topo = link.topology
    if topo == "full":
        per_link = bw / (link.links_per_chip or max(1, n - 1))
        return (Link("c2c", base + src, base + dst, 1, 0, 1, per_link, lat),)
    if topo in ("switch", "dragonfly"):
        return (Link("c2c", base + src, -1, 1, 0, 1, bw, lat),
                Link("c2c", base + dst, -1, -1, 0, 1, bw, 0.0))
    dims = (n,) if topo == "ring" or not link.torus_dims else tuple(link.torus_dims)
    if math.prod(dims) != n:
        raise TegelError(f"{system.name}: torus_dims {dims} do not multiply to {n} chips")
    per_link = bw / (link.links_per_chip or 2 * len(dims))
    route: list[Link] = []
    here = list(_coords(src, dims))
    for axis, size in enumerate(dims):
        target = _coords(dst, dims)[axis]
        ahead = (target - here[axis]) % size
        step = 1 if ahead <= size - ahead else -1
        while here[axis] != target:
            frm = _index(here, dims)
            here[axis] = (here[axis] + step) % size
            route.append(Link("c2c", base + frm, base + _index(here, dims), step, 0, 1, per_link,
                              lat))
    return tuple(route)


def _coords(index: int, dims: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in dims:
        out.append(index % size)
        index //= size
    return tuple(out)


def _index(coords: list[int], dims: tuple[int, ...]) -> int:
    index, scale = 0, 1
    for c, size in zip(coords, dims, strict=True):
        index += c * scale
        scale *= size
    return index
