"""`tegel serve` and `tegel curve`: LLM serving over time (requests, batching, KV cache)."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from tegel.cli import argtypes
from tegel.cli.outputs import add_force
from tegel.cli.run_cmd import beams_arg, format_args, formats, speculation, speculative_args
from tegel.report import jsonout
from tegel.report import serve as report
from tegel.report.plots import write_plot
from tegel.report.progress import Bar

SCHEDULERS = ("static", "continuous", "chunked", "disaggregated")
MLPERF = ("mlperf-offline", "mlperf-server", "mlperf-interactive")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="shipped model name or config.json path (see `tegel inspect`)")
    format_args(p)
    p.add_argument("--tp", type=argtypes.count, help="tensor-parallel degree per replica (default: chosen)")
    p.add_argument("--pp", type=argtypes.count, help="pipeline-parallel degree per replica (default: chosen)")
    p.add_argument("--ep", type=argtypes.count, help="expert-parallel degree, divides tp (default 1)")
    p.add_argument("--scheduler", choices=SCHEDULERS, help="static (a batch at a time, as `tegel "
                   "run`), continuous (vLLM-style, prefill first), chunked (Sarathi: token budget "
                   "per iteration, decodes first), disaggregated (prefill and decode pools)")
    p.add_argument("--max-seqs", type=argtypes.count, default=256,
                   help="sequences a replica runs at once (256)")
    p.add_argument("--max-batched-tokens", type=argtypes.count, default=8192,
                   help="continuous: prompt tokens per prefill iteration (8192)")
    p.add_argument("--chunk-tokens", type=argtypes.count, default=2048,
                   help="chunked: tokens per iteration, decodes included (2048)")
    p.add_argument("--block-tokens", type=argtypes.count, default=16, help="KV-cache page size (16)")
    p.add_argument("--prefill-replicas", type=argtypes.count, help="disaggregated: replicas that prefill "
                   "(default: half)")
    p.add_argument("--router", choices=("round-robin", "least-loaded"), default="round-robin",
                   help="how requests are spread over replicas (round-robin)")
    p.add_argument("--admission", choices=("on-demand", "reserve"), default="on-demand",
                   help="KV blocks on admission: for the prompt, growing on demand with "
                   "preemption (vLLM), or for prompt + output, never evicting (TensorRT-LLM)")
    p.add_argument("--no-prefix-cache", action="store_true", help="keep no shared prompt "
                   "prefix's KV cache: every request prefills its whole prompt")
    p.add_argument("--slo-ttft", type=argtypes.seconds, metavar="S", help="SLO: time to first token, s")
    p.add_argument("--slo-tpot", type=argtypes.seconds, metavar="S", help="SLO: time per output token, s")
    p.add_argument("--params", metavar="FILE", help="a calibration written by `tegel validate "
                   "--calibrate --write FILE` (default: the shipped parameters)")
    p.add_argument("--json", action="store_true", help="print JSON")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a stream of requests over time",
                       description="Simulate requests arriving at a system: iteration-level "
                       "batching, paged KV cache, preemption. Prints TTFT/TPOT/e2e percentiles, "
                       "throughput, goodput at the SLO and energy per token.")
    _common(p)
    p.add_argument("--on", required=True, metavar="SYSTEM", help="system or chip preset, or YAML")
    p.add_argument("--rate", type=argtypes.positive, metavar="R", help="arrivals per second (Poisson)")
    p.add_argument("--cv", type=argtypes.nonnegative, default=1.0,
                   help="with --rate: coefficient of variation "
                   "of the gaps (1: Poisson; > 1: bursty gamma arrivals)")
    p.add_argument("--concurrency", type=argtypes.count, metavar="C", help="closed loop: C requests "
                   "outstanding, the next sent when one finishes")
    p.add_argument("--requests", type=argtypes.count, metavar="N", help="requests (1000); an MLPerf "
                   "server/interactive rate search without it probes each rate with LoadGen's "
                   "minimum run, 600 s of arrivals (at least 5000), so that an overload shows "
                   "in the p99")
    p.add_argument("--input", type=argtypes.count, metavar="L", help="prompt tokens of every request (1024)")
    p.add_argument("--output", type=argtypes.count, metavar="O", help="output tokens of every request (256)")
    p.add_argument("--lengths", metavar="SPEC", help="length distribution, e.g. "
                   "lognormal:in=1024,out=256,sigma=0.6 (see docs/serving.md)")
    p.add_argument("--trace", metavar="FILE", help="replay a request trace (CSV or JSONL; the "
                   "Azure LLM inference and Mooncake formats are read as they are)")
    p.add_argument("--scenario", choices=MLPERF, help="an MLPerf scenario: the benchmark's "
                   "lengths and p99 limits; server and interactive search the highest rate "
                   "within them")
    p.add_argument("--seed", type=argtypes.bounded_int(0, 2**63 - 1), default=0, help="random seed (0)")
    p.add_argument("--shared-prefix", type=argtypes.bounded_int(0), metavar="TOKENS",
                   help="the first TOKENS prompt "
                   "tokens of every request are shared (a system prompt), prefix-cached")
    p.add_argument("--prefixes", type=argtypes.count, default=1, metavar="N", help="with --shared-prefix: "
                   "N distinct prefixes, request i having prefix i %% N (1)")
    p.add_argument("--requests-out", metavar="FILE", help="write one record per request "
                   "(.csv or .jsonl)")
    add_force(p)
    beams_arg(p)
    speculative_args(p)
    p.set_defaults(func=serve_command)
    c = sub.add_parser("curve", help="throughput against per-user speed, per system",
                       description="Each system at rising concurrency (closed loop, steady "
                       "state): tokens/s per user against tokens/s of the system, with TTFT.")
    _common(c)
    c.add_argument("--on", required=True, metavar="A,B,...", help="comma-separated systems")
    c.add_argument("--input", type=argtypes.count, default=1024, metavar="L", help="prompt tokens (1024)")
    c.add_argument("--output", type=argtypes.count, default=256, metavar="O", help="output tokens (256)")
    c.add_argument("--concurrency", metavar="C1,C2,...", help="concurrencies (default: 1, 2, 4, "
                   "... up to replicas x --max-seqs)")
    c.add_argument("--requests", type=argtypes.count, metavar="N", help="requests per point "
                   "(default: max(4 x concurrency, 64))")
    c.add_argument("--plot", metavar="FILE", help="also draw the charts into FILE (.png or .svg, matplotlib)")
    add_force(c)
    c.set_defaults(func=curve_command)


def _info(bar: Bar, done: int | None = None) -> Any:
    """A callback showing an engine's progress text beside the bar (None: no bar)."""
    if not bar.enabled:
        return None
    return lambda text: bar.update(done if done is not None else 0, info=str(text))


def _options(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from tegel.errors import TegelError
    from tegel.mapping.params import load_params
    from tegel.serving.replica import SchedulerConfig
    from tegel.serving.scenario import RunOptions

    for flag in ("tp", "pp", "ep", "prefill_replicas"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise TegelError(f"--{flag.replace('_', '-')}: expected a positive integer, got {value}")
    kind = args.scheduler or ("chunked" if args.command == "curve" else "continuous")
    sched = SchedulerConfig(kind, args.max_seqs, args.max_batched_tokens, args.chunk_tokens,
                            args.block_tokens, args.prefill_replicas, args.router, args.admission,
                            not getattr(args, "no_prefix_cache", False))
    return (sched, RunOptions(args.tp, args.pp, args.ep, beams=getattr(args, "beams", None) or 1),
            load_params(args.params))


def _slo(args: argparse.Namespace) -> Any:
    from tegel.serving.serve import Slo

    return Slo(args.slo_ttft, args.slo_tpot)


def _workload(args: argparse.Namespace, cfg: Any) -> Any:
    from tegel.errors import TegelError
    from tegel.serving.traces import read_trace
    from tegel.serving.workload import make_workload

    for flag, value in (("--trace", args.trace), ("--lengths", args.lengths)):
        if value is not None and not value.strip():
            raise TegelError(f"{flag}: expected a value, got an empty one")
    given = [f for f, v in (("--trace", args.trace), ("--lengths", args.lengths),
                            ("--scenario", args.scenario)) if v]
    if args.input is not None or args.output is not None:
        given.append("--input/--output")
    if len(given) > 1:
        raise TegelError(f"give one of --input/--output, --lengths, --trace or --scenario, "
                         f"not {' and '.join(given)}")
    if args.rate is not None and args.concurrency is not None:
        raise TegelError("give --rate or --concurrency, not both")
    if args.requests < 1:
        raise TegelError(f"--requests: expected a positive integer, got {args.requests}")
    if args.trace:
        if args.rate is not None or args.concurrency is not None:
            raise TegelError("--trace brings its own arrival times; drop --rate/--concurrency")
        return _shared(args, read_trace(args.trace, limit=args.trace_limit))
    lengths = args.lengths
    if lengths is None:
        inp = 1024 if args.input is None else args.input
        out = 256 if args.output is None else args.output
        if cfg.learned_positions and args.input is None:
            inp = min(inp, cfg.max_position_embeddings - out)
        lengths = f"fixed:in={inp},out={out}"
    return _shared(args, make_workload(args.requests, lengths, rate_per_s=args.rate,
                                       concurrency=args.concurrency, cv=args.cv, seed=args.seed))


def _shared(args: argparse.Namespace, workload: Any) -> Any:
    """The workload with --shared-prefix applied (unchanged without it)."""
    if getattr(args, "shared_prefix", None) is None:
        return workload
    return workload.with_shared_prefix(args.shared_prefix, args.prefixes)


def serve_command(args: argparse.Namespace) -> int:
    from tegel.hardware import load_system
    from tegel.serving.serve import serve
    from tegel.workload import load_model_config

    sched, options, params = _options(args)
    args.trace_limit = args.requests  # a trace is read whole unless --requests is given
    # an MLPerf rate search without --requests probes LoadGen's minimum run (_mlperf)
    args.run_for_min_duration = args.requests is None
    if args.requests is None:
        args.requests = 5000 if args.scenario in ("mlperf-server", "mlperf-interactive") else 1000
    cfg = load_model_config(args.model)
    system = load_system(args.on)
    precision = formats(args, system)
    search = None
    spec = speculation(args)
    if args.scenario and args.shared_prefix is not None:
        from tegel.errors import TegelError

        raise TegelError("--shared-prefix: not with --scenario (the benchmark's prompts share none)")
    if args.scenario:
        with Bar("serving (rate search)", quiet=args.json) as bar:
            result, search = _mlperf(args, cfg, system, precision, sched, options, params,
                                     _info(bar), spec)
    else:
        wl = _workload(args, cfg)
        with Bar("serving", total=len(wl), quiet=args.json) as bar:
            result = serve(cfg, system, wl, sched, precision, options=options, params=params,
                           slo=_slo(args), progress=bar.update if bar.enabled else None,
                           seed=args.seed, speculation=spec)
    if args.requests_out:
        _write_requests(args.requests_out, result.request_rows())
    print(report.to_json(result, search) if args.json else report.render_text(result, search))
    return 0


def _mlperf(args: argparse.Namespace, cfg: Any, system: Any, precision: Any, sched: Any,
            options: Any, params: Any, show: Any, spec: Any) -> tuple[Any, dict[str, Any]]:
    """An MLPerf scenario: offline as it is; server/interactive at the highest rate within the
    benchmark's p99 limits."""
    from dataclasses import replace

    from tegel.errors import TegelError
    from tegel.serving.rate_search import Limits, max_rate
    from tegel.serving.serve import Slo, serve
    from tegel.serving.workload import (
        make_workload,
        mlperf_scenario,
        server_min_duration_s,
        server_probe_requests,
    )

    if args.rate is not None or args.concurrency is not None or args.input or args.output:
        raise TegelError("--scenario sets lengths and arrivals; drop --rate/--concurrency/"
                         "--input/--output")
    if args.beams is not None:
        raise TegelError("--scenario sets the benchmark's beam search (MLPerf GPT-J: 4 beams); "
                         "drop --beams")
    which = args.scenario.removeprefix("mlperf-")
    sc = mlperf_scenario(cfg.name, which)
    slo = Slo(sc.ttft_p99_s, sc.tpot_p99_s)
    options = replace(options, beams=sc.beams)  # GPT-J searches 4 beams a request
    info: dict[str, Any] = {"benchmark": sc.benchmark, "scenario": which, "beams": sc.beams,
                            "ttft_p99_limit_s": sc.ttft_p99_s, "tpot_p99_limit_s": sc.tpot_p99_s,
                            "e2e_p99_limit_s": sc.e2e_p99_s,
                            "sources": [{"title": s.title, "url": s.url} for s in sc.sources]}

    def simulate(wl: Any) -> Any:
        return serve(cfg, system, wl, sched, precision, options=options, params=params, slo=slo,
                     seed=args.seed, speculation=spec)

    if which == "offline":
        return simulate(sc.workload(args.requests, seed=args.seed)), info

    def requests_at(rate: float) -> int:
        """--requests, else the arrivals of LoadGen's minimum run at `rate` (at least
        --requests' default): an overload then shows in the p99 as in a measured run."""
        if not args.run_for_min_duration:
            return int(args.requests)
        return server_probe_requests(rate, args.requests)

    search = max_rate(simulate, lambda rate: (make_workload(args.requests, sc.lengths,
                                                            seed=args.seed)
                                              if rate is None else
                                              sc.workload(requests_at(rate), rate_per_s=rate,
                                                          seed=args.seed)),
                      Limits(sc.ttft_p99_s, sc.tpot_p99_s, sc.e2e_p99_s),
                      progress=None if show is None else show)
    info |= {"min_duration_s": server_min_duration_s() if args.run_for_min_duration else None,
             "rate_per_s": search.rate_per_s, "offline_rate_per_s": search.offline_rate_per_s,
             "trail": [{"rate_per_s": r, "within_limits": ok} for r, ok in search.trail]}
    return search.result, info


def _write_requests(path: str, rows: list[dict[str, Any]]) -> None:
    from tegel.atomic import atomic_open
    from tegel.errors import TegelError

    out = Path(path)
    if not rows:
        raise TegelError(f"--requests-out {path}: no request finished; nothing to write")
    with atomic_open(out, "--requests-out") as f:  # no partial file on a write error
        if out.suffix == ".jsonl":
            for row in rows:
                f.write(jsonout.dumps(report.clean(row), what="--requests-out row") + "\n")
        else:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def curve_command(args: argparse.Namespace) -> int:
    from tegel.errors import TegelError
    from tegel.hardware import load_system
    from tegel.serving.curve import curve_of
    from tegel.workload import load_model_config

    sched, options, params = _options(args)
    levels = None
    if args.concurrency:
        try:
            levels = [int(x) for x in args.concurrency.split(",")]
        except ValueError:
            raise TegelError(f"--concurrency: expected comma-separated integers, got "
                             f"{args.concurrency!r}") from None
        if any(c < 1 for c in levels):
            raise TegelError("--concurrency: every level must be >= 1")
    if args.requests is not None and args.requests < 1:
        raise TegelError(f"--requests: expected a positive integer, got {args.requests}")
    cfg = load_model_config(args.model)
    curves = []
    names = [n.strip() for n in args.on.split(",") if n.strip()]
    with Bar("curve (systems)", total=len(names), quiet=args.json) as bar:
        for i, name in enumerate(names):
            system = load_system(name)
            curves.append(curve_of(cfg, system, args.input, args.output, concurrencies=levels,
                                   scheduler=sched, precision=formats(args, system),
                                   options=options, params=params,
                                   requests_per_point=args.requests, progress=_info(bar, i)))
            bar.update(i + 1)
    at_slo = [_at_slo(args, c) for c in curves]
    write_plot(args.plot, "curve", [c.to_dict() | s for c, s in zip(curves, at_slo, strict=True)])
    print(report.curve_json(curves, at_slo) if args.json else report.curve_text(curves, at_slo))
    return 0


def _at_slo(args: argparse.Namespace, c: Any) -> dict[str, Any]:
    """With --slo-ttft/--slo-tpot: the curve's highest-throughput point within them (p99 TTFT,
    median TPOT), or why none is."""
    from tegel.errors import TegelError
    from tegel.serving.curve import operating_point

    if args.slo_ttft is None and args.slo_tpot is None:
        return {}
    _slo(args)  # validates the values
    speed = 1.0 / args.slo_tpot if args.slo_tpot else 0.0
    ttft = args.slo_ttft if args.slo_ttft is not None else math.inf
    label = ", ".join(x for x in (f"p99 TTFT <= {args.slo_ttft:g} s" if args.slo_ttft else "",
                                  f"median TPOT <= {args.slo_tpot:g} s" if args.slo_tpot else "")
                      if x)
    try:
        return {"slo": label, "operating_point": operating_point(c, speed, ttft).to_dict()}
    except TegelError as err:
        return {"slo": label, "slo_error": str(err)}
