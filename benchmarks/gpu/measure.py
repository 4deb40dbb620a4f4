"""Measure your own GPU and write a measurement file that `tegel validate` reads.

Needs PyTorch with CUDA (and `pynvml` / `nvidia-ml-py` for board power); on a machine without
a CUDA device it prints why and exits 0, so CI can run it. What it measures:
- GEMM throughput over shapes and dtypes (bf16, fp16, and fp8 where torch._scaled_mm exists),
- HBM bandwidth (a large device-to-device copy),
- one decode step of a random-weight Llama-3.1-8B layer stack (bf16, torch eager with SDPA),
  at several batch sizes and KV lengths — the `tpot_latency` entries tegel predicts,
- board power during the GEMM and decode loops through NVML.

    python benchmarks/gpu/measure.py --out my-gpu.yaml
    tegel validate my-gpu.yaml

The entries use the format of tegel's shipped H100 set (src/tegel/fidelity/data/), so the
decode-step entries validate directly; GEMM and bandwidth entries are recorded for the
calibration (`gemm_throughput`, `memory_bandwidth`, `board_power` metrics).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _timed(fn: Any, torch: Any, repeats: int = 20, warmup: int = 5) -> float:
    """Median seconds of fn() over `repeats`, measured with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return statistics.median(times)


class PowerSampler:
    """Mean board power (W) over a block, sampled by NVML every 20 ms in a thread."""

    def __init__(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml, self.handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no NVML: power entries are skipped
            self.nvml = None
        self.samples: list[float] = []

    def __enter__(self) -> PowerSampler:
        self.samples, self._stop = [], threading.Event()
        if self.nvml:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.nvml:
            self._thread.join()

    @property
    def mean_w(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def _entry(gpu: str, eid: str, workload: dict[str, Any], metric: str, value: float, unit: str,
           note: str) -> dict[str, Any]:
    return {"id": eid, "system": f"1x {gpu}", "workload": workload, "metric": metric,
            "value": float(value), "unit": unit, "accelerators": 1, "kind": "measured",
            "source": {"title": "benchmarks/gpu/measure.py", "url": "", "file": ""},
            "year": datetime.date.today().year, "notes": note}


def measure_gemms(torch: Any, gpu: str, power: PowerSampler) -> list[dict[str, Any]]:
    out = []
    shapes = [(m, n, k) for m in (1, 16, 128, 1024, 8192) for (n, k) in ((8192, 8192), (28672, 8192))]
    for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        for m, n, k in shapes:
            a = torch.randn(m, k, device="cuda", dtype=dtype)
            b = torch.randn(n, k, device="cuda", dtype=dtype)
            with power:
                t = _timed(lambda a=a, b=b: a @ b.T, torch)
            flops = 2.0 * m * n * k / t
            w = {"model": "gemm", "precision": dtype_name, "m": m, "n": n, "k": k}
            out.append(_entry(gpu, f"gemm-{dtype_name}-{m}x{n}x{k}", w, "gemm_throughput", flops,
                              "FLOP/s", "torch matmul, median of 20 CUDA-event timings"))
            if power.mean_w and m == 8192:
                out.append(_entry(gpu, f"power-gemm-{dtype_name}-{m}x{n}x{k}", w, "board_power",
                                  power.mean_w, "W", "NVML mean during the GEMM loop"))
    return out


def measure_bandwidth(torch: Any, gpu: str) -> list[dict[str, Any]]:
    n = 1 << 30  # 1 GiB
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    t = _timed(lambda: dst.copy_(src), torch)
    return [_entry(gpu, "hbm-copy-1gib", {"model": "copy", "bytes": n}, "memory_bandwidth",
                   2.0 * n / t, "B/s", "device-to-device copy: read + write bytes / time")]


def measure_decode(torch: Any, gpu: str, power: PowerSampler) -> list[dict[str, Any]]:
    """One decode step of a random-weight Llama-3.1-8B in transformers (bf16, SDPA)."""
    try:
        import transformers
    except ImportError:
        print("transformers not installed: decode entries skipped", file=sys.stderr)
        return []
    from tegel.workload.model_config import load_model_config

    cfg = load_model_config("llama-3.1-8b")
    hf = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        intermediate_size=cfg.intermediate_size, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, torch_dtype="bfloat16")
    model = transformers.AutoModelForCausalLM.from_config(hf, torch_dtype=torch.bfloat16).cuda().eval()
    out = []
    for batch, kv in ((1, 1024), (8, 1024), (32, 2048), (64, 1024)):
        ids = torch.randint(0, cfg.vocab_size, (batch, kv), device="cuda")
        with torch.no_grad():
            cache = model(ids, use_cache=True).past_key_values
            step = torch.randint(0, cfg.vocab_size, (batch, 1), device="cuda")

            def decode(cache: Any = cache, step: Any = step, kv: int = kv) -> None:
                model(step, past_key_values=cache, use_cache=True)
                cache.crop(kv)  # keep the KV length fixed across repeats

            with power:
                t = _timed(decode, torch, repeats=10, warmup=3)
        w = {"model": "Llama-3.1-8B (random weights)", "precision": "bf16", "batch": batch,
             "input_len": kv, "output_len": 2, "tensor_parallel": 1}
        out.append(_entry(gpu, f"decode-l31-8b-bs{batch}-kv{kv}", w, "tpot_latency", t * 1e3, "ms",
                          "transformers eager + SDPA decode step, median of 10"))
        if power.mean_w:
            out.append(_entry(gpu, f"power-decode-l31-8b-bs{batch}-kv{kv}", w, "board_power",
                              power.mean_w, "W", "NVML mean during the decode loop"))
        del cache
        torch.cuda.empty_cache()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu-measurements.yaml", help="measurement file to write")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed", file=sys.stderr)
        return 0
    if not torch.cuda.is_available():
        print("skipped: no CUDA device (this script measures a real GPU)", file=sys.stderr)
        return 0
    import yaml

    gpu = torch.cuda.get_device_name(0)
    power = PowerSampler()
    entries = measure_bandwidth(torch, gpu) + measure_gemms(torch, gpu, power)
    entries += measure_decode(torch, gpu, power)
    Path(args.out).write_text(f"# Measured on {gpu} by benchmarks/gpu/measure.py\n"
                              + yaml.safe_dump(entries, sort_keys=False))
    print(f"wrote {len(entries)} entries to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
