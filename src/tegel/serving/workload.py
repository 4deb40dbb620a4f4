"""Synthetic workloads: request lengths, arrival processes and the MLPerf LLM scenarios.

Lengths (`--lengths SPEC`, `parse_lengths`): a kind, a colon and comma-separated fields.

    fixed:in=1024,out=256                  every request has 1,024 prompt and 256 output tokens
    uniform:in=128-2048,out=64-512         whole numbers drawn uniformly, both ends included
                                           (`in=512` alone is the range 512-512)
    lognormal:in=1024,out=256,sigma=0.6    lognormal lengths whose MEAN, after clipping and
                                           rounding, is `in` / `out` (not the median)
        optional: sigma_in=, sigma_out=    the spread of ln(length) per direction (overrides
                                           sigma); 0 makes every length the mean
                  min_in=, max_in=,        clip to [min, max] (min defaults to 1, max to none);
                  min_out=, max_out=       the mean must lie inside, strictly when sigma > 0
    mlperf:llama2-70b                      an MLPerf benchmark's lengths (a lognormal fitted to
                                           its data set; the benchmark or tegel model name)

Arrivals (`make_workload`): at a rate (requests/s), the gaps between requests are gamma
distributed with mean 1/rate and coefficient of variation `cv` (cv = 1 is exponential, i.e. a
Poisson process; cv > 1 is burstier, cv < 1 more regular); the first request arrives at t = 0.
A fixed `concurrency` is a closed loop (every arrival at 0, at most C requests outstanding); with
neither, every request arrives at t = 0 (offline). Lengths and arrival gaps come from separate
streams of one seed, so a seed gives the same requests at every rate, and the gaps at rate r are
the gaps at rate 1 divided by r (common random numbers for rate searches).

MLPerf (`mlperf_scenario`): data/mlperf_scenarios.yaml maps each datacenter LLM benchmark to a
shipped model, its lengths and its p99 limits per scenario, with sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from tegel.errors import TegelError
from tegel.hardware.yamlio import LineDict, parse_yaml
from tegel.serving.requests import Workload

_Z99 = 2.3263478740408408  # standard normal 99th percentile


@dataclass(frozen=True, slots=True)
class FixedLengths:
    """Every request has the same prompt and output length (tokens)."""

    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        _check_range("in", self.input_tokens, self.input_tokens)
        _check_range("out", self.output_tokens, self.output_tokens)

    @property
    def spec(self) -> str:
        return f"fixed:in={self.input_tokens},out={self.output_tokens}"

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(input, output) int64 arrays of length n."""
        return (np.full(n, self.input_tokens, dtype=np.int64),
                np.full(n, self.output_tokens, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class UniformLengths:
    """Whole-number lengths drawn uniformly from [min, max], both ends included."""

    input_min_tokens: int
    input_max_tokens: int
    output_min_tokens: int
    output_max_tokens: int

    def __post_init__(self) -> None:
        _check_range("in", self.input_min_tokens, self.input_max_tokens)
        _check_range("out", self.output_min_tokens, self.output_max_tokens)

    @property
    def spec(self) -> str:
        return (f"uniform:in={self.input_min_tokens}-{self.input_max_tokens},"
                f"out={self.output_min_tokens}-{self.output_max_tokens}")

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return (rng.integers(self.input_min_tokens, self.input_max_tokens, n, endpoint=True),
                rng.integers(self.output_min_tokens, self.output_max_tokens, n, endpoint=True))


@dataclass(frozen=True, slots=True)
class LognormalLengths:
    """Lognormal lengths per direction, clipped to [min, max] and rounded; `*_mean_tokens` is the
    mean of what is drawn (the clipped distribution), `*_sigma` the spread of ln(length)."""

    input_mean_tokens: float
    output_mean_tokens: float
    input_sigma: float
    output_sigma: float
    input_min_tokens: int = 1
    input_max_tokens: int | None = None
    output_min_tokens: int = 1
    output_max_tokens: int | None = None

    def __post_init__(self) -> None:
        _check_lognormal("in", self.input_mean_tokens, self.input_sigma,
                         self.input_min_tokens, self.input_max_tokens)
        _check_lognormal("out", self.output_mean_tokens, self.output_sigma,
                         self.output_min_tokens, self.output_max_tokens)

    @property
    def spec(self) -> str:
        fields = [f"in={_num(self.input_mean_tokens)}", f"out={_num(self.output_mean_tokens)}",
                  f"sigma_in={_num(self.input_sigma)}", f"sigma_out={_num(self.output_sigma)}"]
        for key, value, default in (("min_in", self.input_min_tokens, 1),
                                    ("max_in", self.input_max_tokens, None),
                                    ("min_out", self.output_min_tokens, 1),
                                    ("max_out", self.output_max_tokens, None)):
            if value != default:
                fields.append(f"{key}={value}")
        return "lognormal:" + ",".join(fields)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return (_lognormal_tokens(n, rng, self.input_mean_tokens, self.input_sigma,
                                  self.input_min_tokens, self.input_max_tokens),
                _lognormal_tokens(n, rng, self.output_mean_tokens, self.output_sigma,
                                  self.output_min_tokens, self.output_max_tokens))


Lengths = FixedLengths | UniformLengths | LognormalLengths


def _num(value: float) -> str:
    """Short text that reads back as the same float."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _check_range(direction: str, low: int, high: int) -> None:
    if low < 1 or high < low:
        got = str(low) if low == high else f"{low}-{high}"
        raise TegelError(f"{direction}: expected whole numbers with 1 <= min <= max, got {got}")


def _check_lognormal(direction: str, mean: float, sigma: float, low: int,
                     high: int | None) -> None:
    if not (math.isfinite(sigma) and sigma >= 0):
        raise TegelError(f"sigma_{direction}: expected a number >= 0, got {sigma}")
    _check_range(direction, low, low if high is None else high)
    top = math.inf if high is None else high
    inside = low <= mean <= top if sigma == 0 else low < mean < top
    if not (math.isfinite(mean) and inside):
        bounds = f"[{low}, {'∞' if high is None else high}]"
        strict = "strictly inside" if sigma > 0 else "inside"
        raise TegelError(f"{direction}: the mean ({_num(mean)}) must lie {strict} the clip "
                         f"range {bounds}")


def _clipped_mean(mu: float, sigma: float, low: float, high: float) -> float:
    """E[clip(X, low, high)] for ln X ~ N(mu, sigma²), low > 0, high may be infinite."""
    def phi(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
    a = (math.log(low) - mu) / sigma
    b = (math.log(high) - mu) / sigma if math.isfinite(high) else math.inf
    middle = math.exp(mu + sigma * sigma / 2) * (phi(b - sigma) - phi(a - sigma))
    above = high * (1.0 - phi(b)) if math.isfinite(high) else 0.0
    return low * phi(a) + middle + above


def lognormal_mu(mean: float, sigma: float, low: float, high: float | None) -> float:
    """The mu (mean of ln X) whose lognormal, clipped to [low, high], has the given mean."""
    top = math.inf if high is None else float(high)
    lo = math.log(mean - low) - sigma * sigma / 2 if mean > low else math.log(low) - 50 * sigma
    hi = math.log(mean) - sigma * sigma / 2
    while _clipped_mean(hi, sigma, low, top) < mean:  # clipping from above lowered the mean
        hi += sigma
    for _ in range(200):  # the clipped mean rises with mu: bisect
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _clipped_mean(mid, sigma, low, top) < mean else (lo, mid)
    return (lo + hi) / 2


def _lognormal_tokens(n: int, rng: np.random.Generator, mean: float, sigma: float,
                      low: int, high: int | None) -> np.ndarray:
    if sigma == 0:
        return np.full(n, math.floor(mean + 0.5), dtype=np.int64)
    x = rng.lognormal(lognormal_mu(mean, sigma, low, high), sigma, n)
    return np.rint(np.clip(x, low, high)).astype(np.int64)


_FIELDS = {
    "fixed": ("in", "out"),
    "uniform": ("in", "out"),
    "lognormal": ("in", "out", "sigma", "sigma_in", "sigma_out",
                  "min_in", "max_in", "min_out", "max_out"),
}


def parse_lengths(spec: str) -> Lengths:
    """A `--lengths` SPEC (grammar in the module docstring) as a lengths sampler."""
    where = f"lengths {spec!r}"
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "mlperf":
        try:
            return mlperf_lengths(rest.strip())
        except TegelError as err:
            raise TegelError(f"{where}: {err}") from None
    if not sep or kind not in _FIELDS:
        raise TegelError(f"{where}: expected KIND:FIELDS with KIND one of "
                         f"{', '.join([*_FIELDS, 'mlperf'])}, e.g. fixed:in=1024,out=256")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not key or not value:
            raise TegelError(f"{where}: field {part.strip()!r}: expected NAME=VALUE")
        if key not in _FIELDS[kind]:
            raise TegelError(f"{where}: unknown field {key!r} for {kind}; "
                             f"expected {', '.join(_FIELDS[kind])}")
        if key in fields:
            raise TegelError(f"{where}: field {key!r} given twice")
        fields[key] = value
    missing = [k for k in ("in", "out") if k not in fields]
    if missing:
        raise TegelError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        if kind == "fixed":
            return FixedLengths(_int(fields, "in"), _int(fields, "out"))
        if kind == "uniform":
            return UniformLengths(*_int_range(fields, "in"), *_int_range(fields, "out"))
        sigma = fields.get("sigma")
        if sigma is None and not ("sigma_in" in fields and "sigma_out" in fields):
            raise TegelError("missing field sigma (or both sigma_in and sigma_out)")
        return LognormalLengths(
            _float(fields, "in"), _float(fields, "out"),
            _float(fields, "sigma_in", sigma), _float(fields, "sigma_out", sigma),
            _int(fields, "min_in", "1"), _int_or_none(fields, "max_in"),
            _int(fields, "min_out", "1"), _int_or_none(fields, "max_out"))
    except TegelError as err:
        raise TegelError(f"{where}: {err}") from None


def _int(fields: dict[str, str], key: str, default: str | None = None) -> int:
    text = fields.get(key, default)
    if text is None or not text.isdigit():
        raise TegelError(f"field {key}: expected a whole number >= 1, got {text!r}")
    return int(text)


def _int_or_none(fields: dict[str, str], key: str) -> int | None:
    return _int(fields, key) if key in fields else None


def _int_range(fields: dict[str, str], key: str) -> tuple[int, int]:
    low, dash, high = fields[key].partition("-")
    if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
        raise TegelError(f"field {key}: expected MIN-MAX in whole numbers (or one number), "
                         f"got {fields[key]!r}")
    return int(low), int(high) if dash else int(low)


def _float(fields: dict[str, str], key: str, default: str | None = None) -> float:
    text = fields.get(key, default)
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TegelError(f"field {key}: expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TegelError(f"field {key}: expected a finite number >= 0, got {text!r}")
    return value


def make_workload(n_requests: int, lengths: Lengths | str, *, rate_per_s: float | None = None,
                  concurrency: int | None = None, cv: float = 1.0, seed: int = 0) -> Workload:
    """`n_requests` requests with the given lengths (a sampler or a SPEC string), arriving at
    `rate_per_s` (gamma gaps with coefficient of variation `cv`; 1 = Poisson), or as a closed
    loop of `concurrency`, or all at t = 0 when neither is given. Identical for a seed."""
    if isinstance(lengths, str):
        lengths = parse_lengths(lengths)
    if isinstance(n_requests, bool) or not isinstance(n_requests, int | np.integer) \
            or n_requests < 1:
        raise TegelError(f"workload: requests must be a whole number >= 1, got {n_requests!r}")
    if rate_per_s is not None and concurrency is not None:
        raise TegelError("workload: give an arrival rate or a concurrency, not both")
    if not (math.isfinite(cv) and cv > 0):
        raise TegelError(f"workload: cv must be a number > 0, got {cv}")
    if cv != 1.0 and rate_per_s is None:
        raise TegelError("workload: cv shapes the gaps between arrivals, so it needs a rate")
    lengths_rng, arrivals_rng = (np.random.default_rng(s)
                                 for s in np.random.SeedSequence(seed).spawn(2))
    input_tokens, output_tokens = lengths.sample(int(n_requests), lengths_rng)
    spec: dict[str, object] = {"requests": int(n_requests), "lengths": lengths.spec, "seed": seed}
    if rate_per_s is not None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise TegelError(f"workload: the arrival rate must be > 0 requests/s, got {rate_per_s}")
        shape = 1.0 / (cv * cv)  # gamma with mean 1 and cv: shape 1/cv², scale cv²
        gaps = arrivals_rng.standard_gamma(shape, int(n_requests)) / shape / rate_per_s
        arrival_s = np.cumsum(gaps) - gaps[0]
        name = "poisson" if cv == 1.0 else "gamma"
        spec |= {"arrivals": name, "rate_per_s": rate_per_s, "cv": cv}
        how = f"{name} arrivals at {rate_per_s:g} req/s" + (f", cv {cv:g}" if cv != 1.0 else "")
    else:
        arrival_s = np.zeros(int(n_requests))
        if concurrency is not None:
            if isinstance(concurrency, bool) or not isinstance(concurrency, int | np.integer) \
                    or concurrency < 1:
                raise TegelError(f"workload: concurrency must be a whole number >= 1, "
                                 f"got {concurrency!r}")
            spec |= {"arrivals": "closed", "concurrency": int(concurrency)}
            how = f"closed loop at concurrency {concurrency}"
        else:
            spec |= {"arrivals": "offline"}
            how = "all at t=0"
    return Workload(arrival_s, input_tokens, output_tokens,
                    None if concurrency is None else int(concurrency),
                    f"{n_requests} requests, {how}, lengths {lengths.spec}, seed {seed}", spec)


# --- MLPerf scenarios ------------------------------------------------------------------------

SCENARIOS = ("offline", "server", "interactive")


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class MlperfScenario:
    """An MLPerf Inference LLM benchmark in one scenario: the tegel model, its request lengths and
    p99 limits (s; None where the scenario has none). Offline sends every request at t = 0;
    Server and Interactive send them at Poisson arrivals."""

    benchmark: str  # MLPerf's name, e.g. "llama2-70b"
    model: str  # the shipped tegel model it runs
    scenario: str  # offline | server | interactive
    lengths: LognormalLengths
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    e2e_p99_s: float | None
    samples: int  # size of the benchmark's data set
    beams: int  # beam width the benchmark searches (mlperf_datasets.yaml `beams`; GPT-J 4)
    sources: tuple[Source, ...]
    estimates: tuple[str, ...]  # what in `lengths` is estimated, and by which rule

    @property
    def lengths_spec(self) -> str:
        return self.lengths.spec

    def workload(self, n_requests: int, *, rate_per_s: float | None = None,
                 seed: int = 0) -> Workload:
        """Requests of this benchmark: all at t = 0 offline, else Poisson at `rate_per_s`."""
        if self.scenario == "offline" and rate_per_s is not None:
            raise TegelError(f"MLPerf {self.benchmark} offline sends every request at t=0; "
                             "it takes no arrival rate")
        if self.scenario != "offline" and rate_per_s is None:
            raise TegelError(f"MLPerf {self.benchmark} {self.scenario}: needs an arrival rate")
        return make_workload(n_requests, self.lengths, rate_per_s=rate_per_s, seed=seed)


_FILE = "mlperf_scenarios.yaml"


@cache
def _tables() -> tuple[LineDict, dict[str, Any]]:
    text = (resources.files("tegel.serving") / "data" / _FILE).read_text(encoding="utf-8")
    datasets = (resources.files("tegel.fidelity") / "data" / "mlperf_datasets.yaml")
    return parse_yaml(text, _FILE), parse_yaml(datasets.read_text(encoding="utf-8"),
                                               "mlperf_datasets.yaml")


def _benchmark_key(name: str) -> str:
    table = _tables()[0]["benchmarks"]
    wanted = name.strip().lower()
    for key, entry in table.items():
        if wanted in (key, entry["model"]):
            return key
    known = ", ".join(f"{e['model']} ({k})" for k, e in table.items())
    raise TegelError(f"{name!r} has no MLPerf Inference LLM benchmark; known: {known}")


@cache
def server_min_duration_s() -> float:
    """Seconds of arrivals a Server or Interactive probe covers: LoadGen's minimum run
    (`server_min_duration_s` in mlperf_scenarios.yaml, with its source)."""
    table = _tables()[0]
    value = table.get("server_min_duration_s")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0 \
            or table.get("server_min_duration_source") not in table["sources"]:
        raise TegelError(f"{_FILE}: server_min_duration_s: expected a positive number of seconds "
                         "with a server_min_duration_source naming a key of sources:")
    return float(value)


def server_probe_requests(rate_per_s: float, at_least: int) -> int:
    """Requests a Server probe at `rate_per_s` sends: the arrivals of LoadGen's minimum run,
    at least `at_least`."""
    return max(at_least, math.ceil(rate_per_s * server_min_duration_s()))


def mlperf_lengths(name: str) -> LognormalLengths:
    """The request lengths of an MLPerf benchmark (benchmark or tegel model name)."""
    return mlperf_scenario(name, "offline").lengths


def mlperf_scenario(model_name: str, scenario: str) -> MlperfScenario:
    """An MLPerf benchmark (by tegel model or MLPerf name) in `offline`, `server` or
    `interactive` (a `mlperf-` prefix is accepted), with its lengths, limits and sources."""
    which = scenario.strip().lower().removeprefix("mlperf-")
    if which not in SCENARIOS:
        raise TegelError(f"MLPerf scenario {scenario!r}: expected one of {', '.join(SCENARIOS)} "
                         f"(or mlperf-{'|mlperf-'.join(SCENARIOS)})")
    return _scenario(_benchmark_key(model_name), which)


@cache
def _scenario(key: str, which: str) -> MlperfScenario:
    table, datasets = _tables()
    entry = table["benchmarks"][key]
    where = f"{_FILE}:{entry.line}: {key}"
    if which != "offline" and which not in entry:
        has = [s for s in SCENARIOS if s == "offline" or s in entry]
        raise TegelError(f"MLPerf {key} has no {which} scenario; it has {', '.join(has)}")
    data = datasets.get(entry["dataset"])
    if not isinstance(data, dict):
        raise TegelError(f"{where}: dataset {entry['dataset']!r} is not in mlperf_datasets.yaml")
    estimates: list[str] = []
    source_keys: list[str] = []
    in_mean, in_sigma, in_min, in_max = _direction(entry["input"], data, "input",
                                                   f"{where}.input", estimates, source_keys)
    out_mean, out_sigma, out_min, out_max = _direction(entry["output"], data, "output",
                                                       f"{where}.output", estimates, source_keys)
    try:
        lengths = LognormalLengths(in_mean, out_mean, in_sigma, out_sigma, in_min, in_max,
                                   out_min, out_max)
    except TegelError as err:
        raise TegelError(f"{where}: {err}") from None
    limits = entry.get(which, {})
    source_keys = [*limits.get("sources", []), *source_keys]
    sources = [Source(s["title"], s["url"]) for s in (table["sources"][k]
                                                      for k in dict.fromkeys(source_keys))]
    sources += [Source(s["title"], s["url"]) for s in data.get("sources", [])]
    return MlperfScenario(key, entry["model"], which, lengths, limits.get("ttft_p99_s"),
                          limits.get("tpot_p99_s"), limits.get("e2e_p99_s"), int(data["samples"]),
                          int(data.get("beams", 1)), tuple(sources), tuple(estimates))


def _direction(spec: dict[str, Any], data: dict[str, Any], direction: str, where: str,
               estimates: list[str], source_keys: list[str]) -> tuple[float, float, int, int | None]:
    """(mean, sigma, min, max) of one direction: figures from the data set unless given here."""
    def figure(name: str, default: Any) -> Any:
        if name + "_tokens" in spec:
            why = spec.get(name + "_source")
            if why is None and not any(k in spec for k in (name + "_estimate", "estimate")):
                raise TegelError(f"{where}: {name}_tokens needs a {name}_source or an estimate")
            if why is not None:
                source_keys.append(why)
            return spec[name + "_tokens"]
        return data.get(f"{direction}_tokens_{name}", default)

    mean, low, high = float(figure("mean", math.nan)), int(figure("min", 1)), figure("max", None)
    if not math.isfinite(mean):
        raise TegelError(f"{where}: no {direction}_tokens_mean in the data set and no mean_tokens")
    rule = spec.get("sigma_from")
    if rule == "none":
        sigma = 0.0
    elif rule == "median" and 0 < float(spec.get("median_tokens", math.inf)) < mean:
        sigma = math.sqrt(2 * math.log(mean / float(spec["median_tokens"])))
    elif rule == "max_p99":
        p99 = float(spec.get("p99_tokens", high if high is not None else math.nan))
        spread = _Z99 * _Z99 - 2 * math.log(p99 / mean)
        if not math.isfinite(spread) or spread < 0:
            raise TegelError(f"{where}: no lognormal with mean {mean:g} has its 99th percentile "
                             f"at {p99:g}")
        sigma = _Z99 - math.sqrt(spread)
    else:
        raise TegelError(f"{where}: sigma_from: expected none, max_p99 or median (with a "
                         f"median_tokens below the mean {mean:g}), got {rule!r}")
    sigma = round(sigma, 3)  # an estimate: three digits say all it knows
    text = spec.get("estimate")
    estimates.append(f"{direction}: lognormal sigma {sigma:.3f} by rule {rule!r}"
                     + (f" ({text})" if text else "") + f"; mean {mean:g}, clipped to "
                     f"[{low}, {high if high is not None else '∞'}]")
    if "max_estimate" in spec:
        estimates.append(f"{direction} max: {spec['max_estimate']}")
    return mean, sigma, low, None if high is None else int(high)
