"""Published measurements -> tegel scenarios.

Each entry of a measurement file (the format of the project's reference collection: id,
system, workload, metric, value, unit, ...) becomes a `Case` — the scenario tegel runs and the
figure it predicts — or an `Unmapped` with the reason. Rules (docs/fidelity.md):
- fixed input/output lengths at maximum throughput (TensorRT-LLM tables): batch "auto";
- static batches (older TensorRT-LLM tables): that batch, throughput per GPU;
- batch-1 first-token latency: TTFT of a batch of one;
- concurrency sweeps (NIM tables): a static batch of `concurrency` sequences (throughput,
  inter-token latency); their TTFT above concurrency 1 includes queueing, which a static batch
  does not model, so those entries are listed as unmapped here (the serving group,
  `fidelity/serving.py`, simulates every entry taken under load request by request);
- MLPerf Offline: batch "auto" at the benchmark data set's mean input/output lengths; MLPerf
  Server: the largest batch whose TPOT meets the benchmark's TPOT limit.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tegel.errors import TegelError
from tegel.hardware import System, load_system
from tegel.hardware.system import replica_name, replicated
from tegel.workload.dtypes import DType
from tegel.workload.llm import Precision

GROUPS = ("throughput", "ttft", "tpot", "energy")
CURRENT_SOFTWARE_YEAR = 2025  # measurements from earlier years use that year's generation

_MODELS = (  # (pattern on the workload's model text, shipped model, MLPerf data set)
    (r"llama-?2-70b|llama\(2\) 70b|llama 2 70b", "llama-2-70b", "llama2-70b"),
    (r"llama\(2\) 7b|llama-?2-7b", "llama-2-7b", None),
    (r"llama-?3\.3-70b", "llama-3.3-70b", None),
    (r"llama-?3\.1-405b", "llama-3.1-405b", "llama3.1-405b"),
    (r"llama-?3\.1-70b", "llama-3.1-70b", None),
    (r"llama-?3\.1-8b", "llama-3.1-8b", "llama3.1-8b"),
    (r"llama-?3-8b", "llama-3.1-8b", None),
    (r"gpt-?j", "gpt-j-6b", "gptj"),
    (r"mixtral-8x7b", "mixtral-8x7b", "mixtral-8x7b"),
    (r"mistral-?7b|mistral 7b", "mistral-7b", None),
)
CALIBRATION_GPU = "h100-sxm"  # the only GPU whose measurements are fitted
# (pattern on the entry's system text, chip preset, system of 8 such GPUs: a preset, or a file in
# fidelity/data/systems/ where no preset exists). Form factors without a preset are refused.
_GPUS = (  # (system text, chip preset, its 8-GPU node), the first match wins
    (r"H100[- ]NVL", "h100-nvl", "h100-nvl-8.yaml"),
    (r"H100[- ]PCIe", "h100-pcie", "h100-pcie-8.yaml"),
    (r"H100", "h100-sxm", "dgx-h100"),
    (r"H200", "h200", "hgx-h200"),
    (r"GB200", "gb200-gpu", "gb200-nvl72"),
    (r"(?<!G)B200", "b200", "hgx-b200"),
    (r"MI300X", "mi300x", "mi300x-8"),
    (r"A100", "a100-80gb", "dgx-a100"),
)
_NO_PRESET = r"GH200|(?:H200|B200|A100)[- ]?(?:NVL|PCIe)"  # forms of these without a preset


@dataclass(frozen=True, slots=True)
class Case:
    """One measurement as a tegel scenario: what to run and which figure to compare."""

    id: str
    group: str  # throughput | ttft | tpot | energy
    model: str
    chips: int
    tp: int | None
    batch: int | str  # an integer, "auto" (max throughput) or "server" (TPOT-limited)
    input_tokens: int
    output_tokens: int
    precision: str
    measured: float  # SI: tokens/s, s, J/token
    per_accelerator: bool  # compare throughput per chip rather than per system
    tpot_limit_s: float | None
    source: str
    approximation: str
    max_batch: int = 2048  # cap of an "auto" batch (a concurrency limit)
    beams: int = 1
    software: str | None = None  # GPU software stack of the measurement (None: current)
    itl_from_e2e: bool = False  # inter-token latency as end-to-end latency / output tokens
    gpu: str = CALIBRATION_GPU  # chip preset of the measured system
    longest_output_tokens: int | None = None  # a data set's longest output (None: fixed lengths)


@dataclass(frozen=True, slots=True)
class Unmapped:
    id: str
    reason: str


@cache
def engine_defaults() -> list[dict[str, Any]]:
    """Serving engines' default concurrency limits (fidelity/data/engines.yaml)."""
    text = (resources.files("tegel.fidelity") / "data" / "engines.yaml").read_text()
    return list(yaml.safe_load(text))


def concurrency_cap(workload: dict[str, Any]) -> tuple[int, str] | None:
    """(most sequences one replica runs at once, why) where the entry or its engine's default
    says; None: tegel's own cap of a maximum-throughput batch."""
    if "max_batch_per_replica" in workload:
        return int(workload["max_batch_per_replica"]), "the submission's batch per engine"
    software = str(workload.get("software", "")).lower()
    for engine in engine_defaults():
        if engine["pattern"] in software:
            return int(engine["max_num_seqs"]), f"{engine['engine']}'s default max_num_seqs"
    return None


@cache
def dataset_lengths() -> dict[str, dict[str, Any]]:
    """Mean request lengths of the MLPerf / ML.ENERGY data sets (fidelity/data)."""
    text = (resources.files("tegel.fidelity") / "data" / "mlperf_datasets.yaml").read_text()
    return yaml.safe_load(text)


def longest_output(lengths: dict[str, Any]) -> int | None:
    """A data set's longest output (`output_tokens_max` of its mlperf_datasets.yaml entry),
    None where it gives none."""
    most = lengths.get("output_tokens_max")
    return int(most) if most else None


def batches_in_flight(in_flight: float) -> bool:
    """Whether a stack whose GpuParams.in_flight_batching is `in_flight` replaces a finished
    request at once (1) rather than decoding static batches (0)."""
    return in_flight >= 1.0


def decoded_output_tokens(output_tokens: int, longest: int | None, in_flight: float) -> int:
    """Output tokens a batch decodes for requests that generate `output_tokens` on average and
    at most `longest` (None: all the same length). An engine that batches in flight
    (`in_flight` 1, GpuParams.in_flight_batching) replaces each finished request at once: the
    mean. A static batch decodes until its longest request ends, the finished ones padding
    the steps: taken as the data set's maximum, the harness's max_new_tokens, which one of a
    batch's tens of requests almost always reaches (an upper bound: the expected longest of B
    requests is below it). Only the mean counts as generated tokens."""
    if longest is None or batches_in_flight(in_flight):
        return output_tokens
    return max(output_tokens, longest)


@lru_cache(maxsize=64)
def gpu_system(chip: str, chips: int) -> System:
    """A system of `chips` GPUs of preset `chip` (nodes of 8 as its 8-GPU system; one GPU on
    its own)."""
    if chips == 1:
        return load_system(chip)
    node = next(n for _, c, n in _GPUS if c == chip)
    if node.endswith(".yaml"):
        node = str(resources.files("tegel.fidelity") / "data" / "systems" / node)
    return replicated(load_system(node), chips, replica_name(chips, chip))


def h100_system(chips: int) -> System:
    """An H100 SXM system of `chips` GPUs (DGX H100 nodes of 8; one GPU on its own)."""
    return gpu_system(CALIBRATION_GPU, chips)


def precision_of(name: str) -> Precision:
    """The formats a measurement's precision names: fp8 (weights, activations and KV cache in
    FP8); nvfp4 (NVIDIA's FP4: weights and activations in NVFP4 with an FP8 KV cache, as
    TensorRT-LLM's FP4 checkpoints and NVIDIA's MLPerf FP4 submissions run) and fp4 (the same
    with MX FP4); bf16 / fp16."""
    if name in ("fp4", "nvfp4"):
        fp4 = DType.parse(name)
        return Precision(fp4, fp4, DType.FP8_E4M3)
    return Precision.uniform(DType.parse(name))


OTHER_GPUS_FILE = "other_gpu_measurements.yaml"  # never fitted: the validation of other GPUs


def load_entries(paths: list[str | Path] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(file name, entry) for every entry of the files (default: the shipped H100 set)."""
    if not paths:
        text = (resources.files("tegel.fidelity") / "data" / "h100_measurements.yaml").read_text()
        return [("h100_measurements.yaml", e) for e in _parse(text, "h100_measurements.yaml")]
    out = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise TegelError(f"{p}: no such measurement file")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise TegelError(f"{p}: not UTF-8 text (byte {err.start})") from None
        except OSError as err:
            raise TegelError(f"{p}: cannot read ({err.strerror})") from None
        out += [(str(p), e) for e in _parse(text, str(p))]
    return out


def other_gpu_entries() -> list[tuple[str, dict[str, Any]]]:
    """The shipped published results of GPUs other than the H100 (never fitted)."""
    text = (resources.files("tegel.fidelity") / "data" / OTHER_GPUS_FILE).read_text()
    return [(OTHER_GPUS_FILE, e) for e in _parse(text, OTHER_GPUS_FILE)]


def _parse(text: str, name: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        raise TegelError(f"{name}:{line} not valid YAML") from None
    except RecursionError:
        raise TegelError(f"{name}: nested too deeply to be a measurement file") from None
    if not isinstance(data, list):
        raise TegelError(f"{name}: expected a list of measurement entries")
    for i, e in enumerate(data):
        missing = [k for k in ("id", "system", "workload", "metric", "value", "unit")
                   if not isinstance(e, dict) or k not in e]
        if missing:
            raise TegelError(f"{name}: entry {i + 1}: missing field(s) {', '.join(missing)}")
        _check_entry(e, f"{name}: entry {i + 1}")
    return data


# the units each metric group may be stated in (a throughput in ms is a mistake, not a conversion)
_GROUP_UNITS = {"throughput": ("tokens/s", "tokens/s/GPU"), "ttft": ("ms", "s"),
                "tpot": ("ms", "s"), "energy": ("J/token",)}
_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60


def _check_entry(e: dict[str, Any], where: str) -> None:
    """A measurement entry's fields are what they say (like a hardware file's): `id`, `system`,
    `metric` and `unit` are text, `workload` a mapping, `value` a finite number > 0 in a unit of
    its metric, the chip count and tensor parallelism >= 1."""
    for key in ("id", "system", "metric", "unit"):
        if not isinstance(e[key], str) or not e[key].strip():
            raise TegelError(f"{where}: field {key}: expected text, got {_SHORT.repr(e[key])}")
    where = f"{where} ({_SHORT.repr(e['id'])})"
    if not isinstance(e["workload"], dict):
        raise TegelError(f"{where}: field workload: expected a mapping, "
                         f"got {_SHORT.repr(e['workload'])}")
    value = e["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TegelError(f"{where}: field value: expected a number, got {_SHORT.repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number <= 0:
        raise TegelError(f"{where}: field value: expected a finite number > 0, "
                         f"got {_SHORT.repr(value)}")
    group = _GROUP.get(e["metric"])
    if group is not None and e["unit"] not in _GROUP_UNITS[group]:
        raise TegelError(f"{where}: field unit: {_SHORT.repr(e['unit'])} is not a unit of "
                         f"metric {e['metric']} (expected {' or '.join(_GROUP_UNITS[group])})")
    m = re.match(r"\s*(\d+)\s*x", e["system"])
    if m and int(m.group(1)) < 1:
        raise TegelError(f"{where}: field system: chip count {m.group(1)} (expected >= 1)")
    chips = e.get("accelerators")
    if chips is not None and (isinstance(chips, bool) or not isinstance(chips, int)
                              or not 1 <= chips <= 1 << 20):
        raise TegelError(f"{where}: field accelerators: expected a chip count >= 1, "
                         f"got {_SHORT.repr(chips)}")
    for key, what in (("tensor_parallel", "an integer >= 1"),
                      ("max_batch_per_replica", "a batch (an integer >= 1)"),
                      ("max_tokens_per_iteration", "a token count (an integer >= 1)")):
        if key not in e["workload"]:
            continue
        n = e["workload"][key]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1 << 20:
            raise TegelError(f"{where}: field workload.{key}: expected {what}, "
                             f"got {_SHORT.repr(n)}")
    year = e.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)
                             or not 0 <= year <= 9999):
        raise TegelError(f"{where}: field year: expected a year, got {_SHORT.repr(year)}")


def _model(text: str) -> tuple[str, str | None] | None:
    low = text.lower()
    for pattern, model, dataset in _MODELS:
        if re.search(pattern, low):
            return model, dataset
    return None


def _chips(system: str) -> int:
    m = re.match(r"\s*(\d+)\s*x", system)
    return int(m.group(1)) if m else 1


def _tp(entry: dict[str, Any]) -> int | None:
    w = entry["workload"]
    if "tensor_parallel" in w:
        return int(w["tensor_parallel"])
    for text in (entry["system"], str(entry.get("notes", "")), str(w.get("software", ""))):
        m = re.search(r"\bTP\s*=?\s*(\d+)", text)
        if m:
            return int(m.group(1))
    return None


_UNIT = {"tokens/s": 1.0, "tokens/s/GPU": 1.0, "ms": 1e-3, "s": 1.0, "J/token": 1.0}
_GROUP = {"output_throughput": "throughput", "output_throughput_per_gpu": "throughput",
          "throughput_offline": "throughput", "throughput_server": "throughput",
          "ttft_latency": "ttft", "itl_latency": "tpot", "tpot_latency": "tpot",
          "energy_per_token": "energy"}


@dataclass(frozen=True, slots=True)
class Stated:
    """What every measurement entry states, read once (for `to_case` and the serving group)."""

    id: str
    group: str  # throughput | ttft | tpot | energy
    model: str
    dataset: str | None  # the MLPerf data set of the model, if any
    chips: int
    tp: int | None
    precision: str
    value: float  # SI
    year: int  # 0: not stated
    gpu: str = CALIBRATION_GPU  # chip preset of the measured system
    software: str = ""  # the entry's workload.software text


@cache
def _stacks() -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """(name, software pattern, years) of the shipped GPU software stacks, in file order."""
    text = (resources.files("tegel.mapping") / "data" / "gpu.yaml").read_text(encoding="utf-8")
    gens = (yaml.safe_load(text) or {}).get("generations") or {}
    return tuple((str(n), str(b.get("pattern") or ""), tuple(b.get("years") or ()))
                 for n, b in gens.items())


def software_of(stated: Stated) -> str | None:
    """The GPU software stack a measurement ran (mapping/data/gpu.yaml `generations`): the first
    whose pattern matches its software text, else its year's, else the nearest later year's;
    None: the current one. Energy entries (ML.ENERGY, vLLM) run the current stack."""
    if stated.group == "energy":
        return None
    for name, pattern, _ in _stacks():
        if pattern and re.search(pattern, stated.software, re.IGNORECASE):
            return name
    if not stated.year or stated.year >= CURRENT_SOFTWARE_YEAR:
        return None
    later = sorted((min(y for y in years if y >= stated.year), name)
                   for name, _, years in _stacks() if any(y >= stated.year for y in years))
    return later[0][1] if later else None


def read_entry(entry: dict[str, Any]) -> Stated | Unmapped:
    """The figures an entry states, or why tegel has no scenario for it."""
    eid, system, w = entry["id"], entry["system"], entry["workload"]
    metric = entry["metric"]
    if entry.get("kind", "measured") != "measured":
        return Unmapped(eid, f"kind {entry.get('kind')!r}: only measurements are validated")
    gpu = next((chip for pattern, chip, _ in _GPUS if re.search(pattern, system)), None)
    if gpu is None:
        return Unmapped(eid, f"no GPU preset for system {system!r} (known: H100 SXM/NVL/PCIe, "
                        "H200, B200, GB200, MI300X, A100)")
    if re.search(_NO_PRESET, system):
        return Unmapped(eid, "no preset for this form factor (GH200, or an NVL / PCIe card of "
                        "H200, B200 or A100; presets: the SXM/OAM parts, H100 NVL and PCIe, "
                        "GB200)")
    if metric not in _GROUP or entry["unit"] not in _UNIT:
        return Unmapped(eid, f"metric {metric!r} in {entry['unit']!r} has no tegel counterpart")
    found = _model(str(w.get("model", "")))
    if found is None:
        return Unmapped(eid, f"model {w.get('model')!r} has no shipped config")
    model, dataset = found
    stated_precision = str(w.get("precision", "")).lower()
    precision = next((p for p in ("nvfp4", "fp8", "fp4", "fp16") if p in stated_precision), "bf16")
    tp = _tp(entry)
    return Stated(eid, _GROUP[metric], model, dataset, max(_chips(system), tp or 1), tp,
                  precision, float(entry["value"]) * _UNIT[entry["unit"]],
                  int(entry.get("year", 0) or 0), gpu, str(w.get("software", "")))


def to_case(entry: dict[str, Any]) -> Case | Unmapped:
    """The scenario of one measurement, or why there is none."""
    stated = read_entry(entry)
    if isinstance(stated, Unmapped):
        return stated
    eid, w, metric = entry["id"], entry["workload"], entry["metric"]
    model, dataset, chips, tp = stated.model, stated.dataset, stated.chips, stated.tp
    precision, value, group = stated.precision, stated.value, stated.group
    approx: list[str] = []
    lengths = dataset_lengths()
    longest: int | None = None
    if "input_len" in w:
        lin, lout = int(w["input_len"]), int(w.get("output_len", 1))
    elif dataset and dataset in lengths:
        lin = round(lengths[dataset]["input_tokens_mean"])
        lout = round(lengths[dataset]["output_tokens_mean"])
        longest = longest_output(lengths[dataset])
        approx.append(f"{dataset} data set as its mean lengths {lin}/{lout}")
    elif group == "energy":
        d = lengths["mlenergy-llama3.1-8b"]
        lin, lout = round(d["input_tokens_mean"]), round(d["output_tokens_mean"])
        approx.append(f"ML.ENERGY request lengths as their means {lin}/{lout}")
    elif group == "tpot":
        lin, lout = 512, 256
        approx.append("lengths not published; 512 in / 256 out assumed")
    else:
        return Unmapped(eid, "no input/output lengths and no known data set")
    concurrency = w.get("concurrency")
    batch: int | str
    tpot_limit = None
    cap, beams, itl_e2e = 2048, 1, False
    if "input_len" not in w and dataset and lengths.get(dataset, {}).get("beams", 1) > 1:
        beams = int(lengths[dataset]["beams"])
        approx.append(f"beam search with {beams} beams")
    if metric == "throughput_server":
        batch = "server"
        m = re.search(r"TPOT\s*<=\s*(\d+)\s*ms", str(w.get("latency_constraint", "")))
        tpot_limit = int(m.group(1)) * 1e-3 if m else None
        if tpot_limit is None:
            return Unmapped(eid, "MLPerf Server without a TPOT limit (end-to-end limit only)")
        approx.append(f"largest static batch with TPOT <= {tpot_limit * 1e3:.0f} ms")
    elif concurrency is not None:
        if group == "ttft" and int(concurrency) > 1:
            return Unmapped(eid, "TTFT under concurrency > 1 includes queueing, which a static "
                            "batch does not model (the serving group simulates it)")
        batch, cap = "auto", int(concurrency)
        itl_e2e = group == "tpot"
        approx.append(f"concurrency {cap} as a static batch of up to {cap} (what fits memory; "
                      "the rest queue)" + ("; ITL as end-to-end latency / output tokens, which "
                                           "spreads the prefills of arriving requests" if itl_e2e else ""))
    elif "batch" in w:
        batch = int(w["batch"])
    elif group == "ttft":
        batch = 1
    elif group == "tpot":
        batch = 1
        approx.append("light load as batch 1")
    else:
        batch = "auto"
        approx.append("maximum throughput as the largest batch that fits")
    stated_cap = concurrency_cap(w)
    if batch in ("auto", "server") and concurrency is None and stated_cap is not None:
        cap = stated_cap[0]
        approx.append(f"at most {cap} sequences per replica ({stated_cap[1]})")
    if group == "ttft":
        lout = 1
    # GPU software generations are TensorRT-LLM-class releases; energy entries come from other
    # stacks (vLLM under ML.ENERGY) and are compared with the current generation
    software = software_of(stated)
    return Case(eid, group, model, chips, tp, batch, lin, lout, precision, value,
                metric == "output_throughput_per_gpu", tpot_limit,
                str(entry.get("source", {}).get("title", "")), "; ".join(approx), cap, beams,
                software, itl_e2e, stated.gpu, longest)
