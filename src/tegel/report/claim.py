"""`tegel claim`, `tegel cost` and `tegel area`: the text and JSON of a Claim, of a system's
price (and its serving figures) and of a chip's modelled area."""

from __future__ import annotations

from typing import Any

from tegel.report import jsonout
from tegel.report.text import si, table


def to_json(claim: Any) -> str:
    """`tegel claim --json`: the claim's `to_dict()`."""
    return jsonout.dumps(claim.to_dict(), indent=2)


def render_text(claim: Any, rows: int = 12) -> str:
    """`tegel claim`: the report of `render_claim` (`rows` tornado rows)."""
    return render_claim(claim.to_dict(), rows)


_SYSTEM_ROWS = (  # (label, key path, unit)
    ("concurrency (sequences in flight)", ("batch",), ""),
    ("chips busy / idle", ("chips_busy", "chips_idle"), "/"),
    ("speed per user (1 / median TPOT)", ("tokens_per_s_per_user",), "tok/s"),
    ("p99 TTFT", ("ttft_p99_s",), "s"),
    ("throughput per system", ("throughput_tokens_per_s",), "tok/s"),
    ("energy per token", ("energy_j_per_token",), "J"),
    ("energy floor at its node and batch", ("energy_floor_j_per_token",), "J"),
    ("x above the floor", ("floor_ratio",), "x"),
    ("power while serving", ("power_w",), "W"),
    ("chip price", ("chip_price_usd",), "$"),
    ("system capital", ("tco", "capital_usd"), "$"),
    ("TCO", ("tco", "total_usd"), "$"),
    ("$ per million tokens (TCO)", ("usd_per_mtoken",), "$"),
    ("$ per million tokens (capital)", ("capital_usd_per_mtoken",), "$"),
    ("systems for the target", ("footprint", "systems"), ""),
    ("chips", ("footprint", "chips"), ""),
    ("racks", ("footprint", "racks"), ""),
    ("facility kW (nameplate x PUE)", ("footprint", "facility_kw"), "kW"),
    ("IT kW while serving", ("footprint", "serving_kw"), "kW"),
    ("floor area", ("footprint", "floor_m2"), "m^2"),
)


def _get(d: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        d = d[key]
    return d


def _cell(d: dict, path: tuple[str, ...], unit: str) -> str:
    if unit == "/":  # two fields side by side
        return " / ".join(str(d[key]) for key in path)
    return _fmt(_get(d, path), unit)


def _fmt(value: Any, unit: str) -> str:
    if unit == "x":
        return f"{value:.3g}x"
    if unit in ("", "$"):
        if isinstance(value, int):
            return str(value)
        return f"${value:,.2f}" if unit == "$" and value < 100 else (
            f"${value:,.0f}" if unit == "$" else f"{value:.3g}")
    if unit in ("kW", "m^2"):
        return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.3g} {unit}"
    return si(value, unit)


def system_rows(d: dict) -> list[list[str]]:
    """(label, A, B) of a claim's dict: the two systems side by side."""
    sa, sb = d["systems"][d["on"]], d["systems"][d["vs"]]
    body = [[label, _cell(sa, p, u), _cell(sb, p, u)] for label, p, u in _SYSTEM_ROWS]
    body.append(["parallelism", _par(sa["parallelism"]), _par(sb["parallelism"])])
    body.append(["chip price basis", sa["chip_price_basis"], sb["chip_price_basis"]])
    return body


def render_claim(d: dict, rows: int = 12) -> str:
    """The text report of `tegel claim` from its JSON dict."""
    w = d["workload"]
    on, vs = d["on"], d["vs"]
    sa, sb = d["systems"][on], d["systems"][vs]
    out = [f"{d['model']}: {w['input_tokens']} in / {w['output_tokens']} out; footprint for "
           f"{w['target_tokens_per_s']:.3g} tokens/s",
           f"service level, both systems: {d['service_level']['text']}",
           f"claim: {on} (A) vs {vs} (B); ratios are A's advantage (> 1: A better)",
           d["accounting"], ""]
    if d["service_level"]["mode"] != "operating point":
        out.insert(-1, f"batches: A {sa['batch_basis']}, B {sb['batch_basis']}")
    out.append(table(["", f"A: {on}", f"B: {vs}"], system_rows(d)))
    r = d["ratios"]
    out += ["", table(["ratio (A's advantage)", "x"], [
        ["energy (tokens/J)", f"{r['energy']:.3g}x"],
        ["cost, TCO ($/Mtoken)", f"{r['cost']['tco']:.3g}x"],
        ["cost, capital only ($/Mtoken)", f"{r['cost']['capital']:.3g}x"],
        ["footprint, racks", f"{r['footprint']['racks']:.3g}x"],
        ["footprint, facility kW (nameplate)", f"{r['footprint']['kw']:.3g}x"],
        ["footprint, IT kW while serving", f"{r['footprint']['serving_kw']:.3g}x"]])]
    out += ["", f"energy floor of the workload: {si(d['energy_floor_j_per_token'], 'J')} per token, "
            "the lower of A's and B's (arithmetic + one read of the weights per batch from the "
            "smallest SRAM macro, at each chip's node and batch)",
            f"distance to the floor: A {sa['floor_ratio']:.3g}x, B {sb['floor_ratio']:.3g}x"]
    if d["tornado"]:
        out += ["", *_tornado_lines(d, rows)]
    if d["equal_load"]:
        out += ["", *_equal_load_lines(d)]
    out += [f"note: {n}" for n in d["notes"]]
    if d["verdict"]:
        out += ["", f"verdict: {d['verdict']['text']}"]
    return "\n".join(out)


_TORNADO_RATIOS = (("energy", "energy"), ("cost_tco", "cost TCO"), ("racks", "racks"),
                   ("kw", "facility kW"))
_ALL_RATIOS = (*_TORNADO_RATIOS, ("cost_capital", "cost capital"), ("serving_kw", "serving kW"))


def _tornado_lines(d: dict, rows: int) -> list[str]:
    """The tornado (most influential first) and the break-evens found inside a range."""
    t = d["tornado"]
    body = [[("* " if r["how"].startswith("served") else "") + r["assumption"],
             f"{r['low']} | {r['central']} | {r['high']}",
             *(f"{r['ratios_low'][k]:.3g}..{r['ratios_high'][k]:.3g}" for k, _ in _TORNADO_RATIOS)]
            for r in t[:rows]]
    out = ["tornado: A's advantage with each unannounced figure at the low and the high end of "
           "its plausible range, the rest central (most influential first; * served again, "
           "else re-priced; ranges and sources: src/tegel/economics/data/ranges.yaml)",
           table(["assumption", "low | central | high", *(n for _, n in _TORNADO_RATIOS)], body,
                 align="lr" + "r" * len(_TORNADO_RATIOS))]
    if len(t) > rows:
        out.append(f"({len(t) - rows} more rows in --json)")
    claimed = d["verdict"]["claimed"]
    found = [[b["assumption"], label, cell["to_1x"]["text"], cell["to_claimed"]["text"]]
             for b in d["break_even"] for k, label in _ALL_RATIOS
             for cell in [b["ratios"][k]]
             if cell["to_1x"]["value"] is not None or cell["to_claimed"]["value"] is not None]
    out += ["", f"break-even: where A's advantage crosses 1x and the claimed {claimed:g}x inside "
            "each range (the crossing nearest the central value)"]
    if found:
        out.append(table(["assumption", "ratio", "1x at", f"{claimed:g}x at"], found,
                         align="llrr"))
        out.append("every other assumption and ratio: never within its range")
    else:
        out.append("none: no assumption moves any ratio across 1x or the claimed figure within "
                   "its range")
    return out


def _equal_load_lines(d: dict) -> list[str]:
    e = d["equal_load"]
    on, vs = d["on"], d["vs"]
    a, b = e["systems"][on], e["systems"][vs]
    rows = (("systems x concurrency", lambda s: f"{s['systems']} x {s['concurrency']}"),
            ("throughput per system", lambda s: si(s["throughput_per_system_tokens_per_s"],
                                                   "tok/s")),
            ("speed per user / p99 TTFT", lambda s: f"{s['tokens_per_s_per_user']:,.0f} tok/s "
                                                    f"/ {si(s['ttft_p99_s'], 's')}"),
            ("energy per token", lambda s: si(s["energy_j_per_token"], "J")),
            ("power per system (idle)", lambda s: f"{si(s['power_per_system_w'], 'W')} "
                                                  f"({si(s['idle_w'], 'W')})"),
            ("$ per million tokens (TCO)", lambda s: _fmt(s["usd_per_mtoken"], "$")),
            ("racks / facility kW", lambda s: f"{s['footprint']['racks']} / "
                                              f"{s['footprint']['facility_kw']:,.0f} kW"))
    r = e["ratios"]
    return [f"equal load: both serve {si(e['tokens_per_s'], 'tok/s')} ({e['basis']}) at the "
            "same service level, each sized in whole systems and charged for all they occupy",
            table(["", f"A: {on}", f"B: {vs}"], [[label, f(a), f(b)] for label, f in rows]),
            f"A's advantage at equal load: energy {r['energy']:.3g}x, cost TCO "
            f"{r['cost']['tco']:.3g}x, capital {r['cost']['capital']:.3g}x, racks "
            f"{r['footprint']['racks']:.3g}x, facility kW {r['footprint']['kw']:.3g}x, IT kW "
            f"while serving {r['footprint']['serving_kw']:.3g}x"]


def _par(p: dict) -> str:
    return f"tp{p['tp']} pp{p['pp']} dp{p['dp']}"


def cost_text(d: dict[str, Any], model: str | None) -> str:
    """`tegel cost` from its JSON dict: the chip's price by part, the compute die, the system's
    capital, and with `model` the serving figures."""
    die, cap = d["compute_die"], d["capital_breakdown_usd"]
    out = [f"{d['system']}: {d['chips']} x {d['chip']} in {d['nodes']} "
           f"node(s); chip priced at {d['chip_price_basis']}",
           table(["chip part", "USD"], [[k, f"${v:,.0f}"] for k, v in d["chip_breakdown_usd"].items()]
                 + [["price", f"${d['chip_price_usd']:,.0f}"]]),
           f"\ncompute die: {die['area_mm2']:.0f} mm^2, {die['dies_per_wafer']:.1f} per wafer, yield "
           f"{die['yield']:.1%}, wafer ${die['wafer_usd']:,.0f}, good die ${die['good_die_usd']:,.0f}",
           f"system capital: ${d['capital_usd']:,.0f} (chips ${cap['chips']:,.0f}, hosts "
           f"${cap['hosts']:,.0f})"]
    if model:
        s = d["serving"]
        out.append(f"\nservice level: {d['service_level']['text']}")
        out.append(table(["serving " + model, ""],
                         [[label, _cell(s, p, u)] for label, p, u in _SYSTEM_ROWS]))
        out += [f"note: {note}" for note in s["footprint"]["notes"]]
    return "\n".join(out)


def area_json(area: Any) -> str:
    """`tegel area --json`: the area's `to_dict()`."""
    return jsonout.dumps(area.to_dict(), indent=2)


def area_text(area: Any) -> str:
    """`tegel area`: modelled against stated silicon, then the components' shares."""
    from tegel.economics.area import area_rows

    return (f"{area.chip} at {area.node}: modelled {area.total_mm2:.0f} mm^2 of silicon vs "
            f"{area.stated_silicon_mm2:.0f} mm^2 stated ({area.error:+.1%}); {area.tiles} tiles of "
            f"{area.tile_mm2:.3g} mm^2\n"
            + table(["component", "mm^2", "share"],
                    [[k, f"{v:.1f}", f"{share:.1%}"] for k, v, share in area_rows(area)]))
