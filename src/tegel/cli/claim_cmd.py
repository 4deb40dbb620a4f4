"""`tegel claim`, `tegel cost` and `tegel area`: check an efficiency claim between two systems,
price a system, and model a chip's die area."""

from __future__ import annotations

import argparse
import math
from typing import Any

from tegel.cli import argtypes
from tegel.cli.outputs import add_force
from tegel.report import claim as report
from tegel.report import jsonout
from tegel.report.plots import write_plot
from tegel.report.progress import Bar

# CLI flag -> economics.yaml name (SI: --rack-power-kw is converted to W)
_NAMED = (("electricity_usd_per_kwh", "electricity price, USD/kWh"),
          ("pue", "power usage effectiveness of the facility"),
          ("years", "years of ownership"),
          ("utilization", "share of time serving at the modelled throughput"),
          ("facility_usd_per_w", "data-centre capital per W of nameplate IT power"),
          ("gross_margin", "vendor margin on chips priced from cost"))


def _economics_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("assumptions (defaults and sources: src/tegel/economics/data/economics.yaml)")
    for name, text in _NAMED:
        kind = argtypes.fraction if name in ("utilization", "gross_margin") else (
            argtypes.nonnegative if name == "facility_usd_per_w" else argtypes.positive)
        g.add_argument("--" + name.replace("_", "-"), type=kind, metavar="X", help=text)
    g.add_argument("--rack-power-kw", type=argtypes.positive, metavar="KW", help="power limit per rack, kW")
    g.add_argument("--pricing", choices=("market", "cost"),
                   help="chip price: a quoted market price where known (market, default), or "
                   "manufacturing cost / (1 - margin) for every chip (cost)")
    g.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override any assumption, e.g. --set memory_usd_per_gb.hbm3=10 (repeat)")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    from tegel.economics.assumptions import parse_set_flags

    out = parse_set_flags(args.set)
    for name, text in out.items():  # --set pue=inf: refused here, not a `TCO $inf` later
        try:
            number = float(text)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            from tegel.errors import TegelError

            raise TegelError(f"--set {name}={str(text)[:40]}: expected a finite number")
    for name, _ in _NAMED:
        value = getattr(args, name)
        if value is not None:
            out[name] = str(value)
    if args.rack_power_kw is not None:
        out["rack_power_limit_w"] = str(args.rack_power_kw * 1e3)
    if args.pricing:
        out["pricing"] = args.pricing
    return out


def _workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=argtypes.count, default=1024, metavar="L", help="prompt tokens (1024)")
    p.add_argument("--output", type=argtypes.count, default=256, metavar="O", help="generated tokens (256)")
    p.add_argument("--precision", default="auto", help="weights, activations and KV-cache format "
                   "(auto: bf16 where the chip has it)")
    p.add_argument("--min-tokens-per-s-per-user", type=argtypes.positive, metavar="S",
                   help="speed each user must see, 1 / median TPOT (50)")
    p.add_argument("--max-ttft", type=argtypes.seconds, metavar="S",
                   help="p99 time to first token each user must see, s (2: the default for "
                   "1,024-token prompts, not scaled with --input)")
    p.add_argument("--scheduler", choices=("chunked", "continuous"), default="chunked",
                   help="how every system batches requests at its operating point (chunked)")
    p.add_argument("--target-tokens-per-s", "--target", type=argtypes.positive, default=1e6, metavar="T",
                   help="throughput the footprint is sized for, tokens/s (1e6)")
    p.add_argument("--params", metavar="FILE", help="a calibration written by `tegel validate "
                   "--calibrate --write FILE` (default: the shipped parameters)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("claim", help="check an energy / cost / footprint claim of A over B",
                       description="Serve one LLM workload on two systems at the same service "
                       "level (speed per user, p99 TTFT, scheduler), each at the operating point "
                       "of its serving curve; report A's advantage over B in energy, cost per "
                       "million tokens and footprint; each ratio over the plausible range of every "
                       "unannounced figure (tornado), where it crosses 1x and the claimed figure "
                       "(break-even) and a one-line verdict; the same comparison at equal load; "
                       "and each machine's distance to the energy floor.")
    c.add_argument("model", help="shipped model name or config.json path")
    c.add_argument("--on", required=True, metavar="A", help="the system making the claim")
    c.add_argument("--vs", required=True, metavar="B", help="the system it is compared with")
    _workload_args(c)
    c.add_argument("--batch-on", type=argtypes.count, help="fix A's batch: both sides then run static "
                   "batches (tegel run; B at its largest meeting the speed), no TTFT limit")
    c.add_argument("--batch-vs", type=argtypes.count, help="fix B's batch (static batches, as --batch-on)")
    c.add_argument("--claimed", type=argtypes.positive_of("factor"), default=100.0, metavar="X",
                   help="the advantage claimed, x (100, as in the vendors' 'up to 100x'): the "
                   "break-evens and the verdict test it")
    c.add_argument("--no-tornado", dest="tornado", action="store_false",
                   help="skip the tornado over the plausible ranges, the break-evens and the "
                   "verdict (src/tegel/economics/data/ranges.yaml)")
    c.add_argument("--equal-load", type=argtypes.positive_of("number of tokens/s"), metavar="TOK_S",
                   help="tokens/s both systems serve in the equal-load comparison (default: the "
                   "slower system's throughput at the service level)")
    c.add_argument("--no-equal-load", dest="equal_load_on", action="store_false",
                   help="skip the equal-load comparison")
    c.add_argument("--rows", type=argtypes.bounded_int(0, 10_000), default=12,
                   help="tornado rows to print (12)")
    _economics_args(c)
    c.add_argument("--plot", metavar="FILE", help="also draw the charts into FILE (.png or .svg, matplotlib)")
    add_force(c)
    c.set_defaults(func=claim_command)
    k = sub.add_parser("cost", help="capital cost of a system; with --model, TCO and footprint",
                       description="Die, memory, packaging and board cost of a system's chip, "
                       "its capital cost, and with --model its $/Mtoken and footprint.")
    k.add_argument("system", help="system or chip preset, or YAML")
    k.add_argument("--model", help="also serve this model at its operating point")
    _workload_args(k)
    _economics_args(k)
    k.set_defaults(func=cost_command)
    a = sub.add_parser("area", help="modelled die area of a chip, by component",
                       description="Die area from tiles, MACs, SRAM, network, memory PHYs and "
                       "I/O at the chip's node, against the chip's stated area.")
    a.add_argument("chip", help="chip or system preset, or YAML")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="override an area assumption, e.g. --set area.gpu_other_mm2=20")
    a.set_defaults(func=area_command)


def _precision(text: str) -> Any:
    from tegel.errors import TegelError
    from tegel.workload import DType, Precision

    if text == "auto":
        return None
    try:
        return Precision.uniform(DType.parse(text))
    except ValueError as err:
        raise TegelError(f"--precision: {err}") from None


def _check(args: argparse.Namespace) -> None:
    from tegel.errors import TegelError

    for flag in ("input", "output", "batch_on", "batch_vs"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise TegelError(f"--{flag.replace('_', '-')}: expected a positive integer, got {value}")
    speed = args.min_tokens_per_s_per_user
    if speed is not None and (speed < 0 or math.isnan(speed)):
        raise TegelError(f"--min-tokens-per-s-per-user: expected a number >= 0, got {speed:g}")
    if not args.target_tokens_per_s > 0:
        raise TegelError(f"--target-tokens-per-s: expected a positive number, got "
                         f"{args.target_tokens_per_s:g}")
    claimed = getattr(args, "claimed", 100.0)
    if not (claimed > 0 and math.isfinite(claimed)):
        raise TegelError(f"--claimed: expected a positive factor, got {claimed:g}")
    load = getattr(args, "equal_load", None)
    if load is not None and not (load > 0 and math.isfinite(load)):
        raise TegelError(f"--equal-load: expected a positive number of tokens/s, got {load:g}")


def claim_command(args: argparse.Namespace) -> int:
    from tegel.economics.assumptions import load_assumptions
    from tegel.economics.claim import ClaimOptions, claim
    from tegel.mapping.params import load_params

    _check(args)
    a = load_assumptions().with_overrides(_overrides(args))
    options = ClaimOptions(input_tokens=args.input, output_tokens=args.output,
                           precision=_precision(args.precision),
                           min_tokens_per_s_per_user=args.min_tokens_per_s_per_user,
                           target_tokens_per_s=args.target_tokens_per_s, batch_on=args.batch_on,
                           batch_vs=args.batch_vs, max_ttft_s=args.max_ttft,
                           scheduler=args.scheduler, claimed=args.claimed, tornado=args.tornado,
                           equal_load=args.equal_load_on,
                           equal_load_tokens_per_s=args.equal_load)
    with Bar("claim (A, B, the tornado and break-evens)", quiet=args.json):
        c = claim(args.model, args.on, args.vs, a, options=options,
                  params=load_params(args.params))
    jsonout.require_finite(c.to_dict(), "claim")  # an error, not `inf` or `nanx` in a table
    write_plot(args.plot, "claim", c.to_dict())
    print(report.to_json(c) if args.json else report.render_text(c, args.rows))
    return 0


def cost_command(args: argparse.Namespace) -> int:
    from tegel.economics.assumptions import load_assumptions
    from tegel.economics.claim import Workload, evaluate_system
    from tegel.economics.cost import chip_cost, system_capital
    from tegel.hardware import load_system
    from tegel.mapping.params import load_params
    from tegel.serving.replica import SchedulerConfig
    from tegel.workload.model_config import load_model_config

    _check(args)
    a = load_assumptions().with_overrides(_overrides(args))
    system = load_system(args.system)
    cc = chip_cost(system.chip, a)
    cap = system_capital(system, a)
    die = cc.compute_die
    d: dict[str, Any] = {
        "system": system.name, "chip": system.chip.name, "chips": system.chip_count,
        "nodes": system.node_count, "pricing": a.pricing, "chip_price_usd": cc.price_usd,
        "chip_price_basis": cc.basis, "chip_manufacturing_usd": cc.manufacturing_usd,
        "chip_breakdown_usd": cc.breakdown_usd,
        "compute_die": {"area_mm2": die.area_mm2, "dies_per_wafer": die.dies_per_wafer,
                        "yield": die.yield_fraction, "wafer_usd": die.wafer_usd,
                        "good_die_usd": die.good_die_usd},
        "capital_usd": cap.total_usd,
        "capital_breakdown_usd": {"chips": cap.chips_usd, "hosts": cap.hosts_usd}}
    if args.model:
        speed = (a.min_tokens_per_s_per_user if args.min_tokens_per_s_per_user is None
                 else args.min_tokens_per_s_per_user)
        w = Workload(load_model_config(args.model), args.input, args.output,
                     _precision(args.precision), speed, args.target_tokens_per_s, args.max_ttft,
                     SchedulerConfig(kind=args.scheduler))
        d["service_level"] = w.service_dict()
        d["serving"] = evaluate_system(w, system, a, params=load_params(args.params)).to_dict()
    jsonout.require_finite(d, "cost")  # an error, not `TCO $inf` in a table
    print(jsonout.dumps(d, indent=2) if args.json else report.cost_text(d, args.model))
    return 0


def area_command(args: argparse.Namespace) -> int:
    from tegel.economics.area import chip_area
    from tegel.economics.assumptions import load_assumptions, parse_set_flags
    from tegel.hardware import load_system

    a = load_assumptions().with_overrides(parse_set_flags(args.set))
    system = load_system(args.chip)
    area = chip_area(system.chip, a, system if system.chip_count > 1 else None)
    print(report.area_json(area) if args.json else report.area_text(area))
    return 0
