"""Fuzz campaign over every input surface (issue 18): runs `cases(seed, n)` of every
`tests/fuzz/gen_*.py` there is (CLI arguments, measurement files, config.json, safetensors
folders, and the hardware YAML where gen_hardware.py exists; a generator that does not import is
skipped with a note), each case in a forked worker under RLIMIT_AS and an alarm, and counts each
outcome per surface:

  ok            a result, every number in it finite
  TegelError    a one-line error
  traceback     any other exception (MemoryError included)
  hang          the alarm fired, or the worker died
  non-finite    a result holding NaN / inf (a float, or `nan` / `inf` in printed text), or a
                generator's own `NonFinite` check failing

    python benchmarks/fuzz.py --minutes 10          # round-robin over the surfaces until then
    python benchmarks/fuzz.py --cases 2000          # or a number of cases per surface

Exit status 1 on any traceback, hang or non-finite output (the first few are printed)."""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import json
import math
import os
import pickle
import re
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

CLASSES = ("ok", "TegelError", "traceback", "hang", "non-finite")
# printed non-finite numbers: Python's inf / nan as tokens (also as a ratio or share: nanx,
# inf%), JSON's bare NaN / Infinity as a whole value; prose such as "Infinity Fabric" is not
_NONFINITE_TEXT = re.compile(r"(?<![\w.])(-?inf|nan|NaN)[x%]?(?![\w])"
                             r"|(?<=[:\[,])\s*-?Infinity\s*(?=[,\]}\n]|$)")


def nonfinite(value: Any, depth: int = 0) -> bool:
    """Whether a result holds a non-finite number (or prints one)."""
    if depth > 50:
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return bool(_NONFINITE_TEXT.search(value))
    if isinstance(value, dict):
        return any(nonfinite(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(nonfinite(v, depth + 1) for v in value[:10_000])
    try:
        import numpy as np

        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return not bool(np.isfinite(value).all())
    except ImportError:
        pass
    return False


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def run_case(thunk: Any, timeout_s: float, memory_bytes: int) -> tuple[str, str]:
    """(class, detail) of one case, run in a forked child under RLIMIT_AS and an alarm."""
    from tegel.errors import TegelError

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(r)
        try:
            limit = _vm_bytes() + memory_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the alarm kills: a hang
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            try:
                result = thunk()
                out = ("non-finite", repr(result)[:300]) if nonfinite(result) else ("ok", "")
            except TegelError as err:
                out = ("TegelError", str(err)[:300])
            except BaseException as err:  # a generator's own NonFinite check: non-finite output
                kind = "non-finite" if type(err).__name__ == "NonFinite" else "traceback"
                out = (kind, traceback.format_exc(limit=-4)[-1500:])
            data = pickle.dumps(out)
        except BaseException:
            data = pickle.dumps(("traceback", traceback.format_exc(limit=-4)[-1500:]))
        os.write(w, data)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if chunks:
        return pickle.loads(b"".join(chunks))
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    return "hang", f"worker ended without an answer (signal {sig}, status {status})"


def generators() -> dict[str, Any]:
    """surface name -> its module, for every tests/fuzz/gen_*.py that imports."""
    out = {}
    for path in sorted((ROOT / "tests" / "fuzz").glob("gen_*.py")):
        name = path.stem.removeprefix("gen_")
        try:
            out[name] = importlib.import_module(f"tests.fuzz.{path.stem}")
        except Exception as err:
            print(f"{path.name}: cannot import ({err!r}); skipped", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, help="run until then, round-robin over the surfaces")
    p.add_argument("--cases", type=int, help="cases per surface (default 200 without --minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", action="append", help="surface(s) to run (cli, measurements, ...)")
    p.add_argument("--timeout", type=float, default=30.0, help="alarm per case, s (30)")
    p.add_argument("--memory-gb", type=float, default=2.0, help="address space per case above "
                   "the worker's start, GB (2)")
    p.add_argument("--json", metavar="FILE", help="also write the counts as JSON")
    args = p.parse_args(argv)
    gens = generators()
    if args.only:
        gens = {k: v for k, v in gens.items() if k in args.only}
    if not gens:
        print("no generators found", file=sys.stderr)
        return 2
    per_surface = args.cases if args.cases is not None else (None if args.minutes else 200)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else math.inf
    counts = {name: collections.Counter({c: 0 for c in CLASSES}) for name in gens}
    failures: list[tuple[str, str, str, str]] = []
    # chunks of cases per surface, round-robin, until the deadline or every surface is done
    for mod in gens.values():  # import what the cases use once, not in every forked worker
        for _, thunk in mod.cases(args.seed + 999_983, 3):
            with contextlib.suppress(BaseException):  # a warm-up; the counted runs report
                thunk()
    chunk, round_ = 50, 0
    active = dict(gens)
    start = time.monotonic()
    while active and time.monotonic() < deadline:
        for name, mod in list(active.items()):
            n = chunk if per_surface is None else min(chunk, per_surface - sum(counts[name].values()))
            if n <= 0:
                del active[name]
                continue
            for label, thunk in mod.cases(args.seed * 1_000_003 + round_, n):
                kind, detail = run_case(thunk, args.timeout, int(args.memory_gb * 2**30))
                counts[name][kind] += 1
                if kind in ("traceback", "hang", "non-finite"):
                    failures.append((name, kind, label, detail))
                if time.monotonic() >= deadline:
                    break
            if time.monotonic() >= deadline:
                break
        round_ += 1
    elapsed = time.monotonic() - start
    total: collections.Counter[str] = collections.Counter()
    print(f"{'surface':<14}" + "".join(f"{c:>12}" for c in CLASSES) + f"{'total':>9}")
    for name, c in counts.items():
        total.update(c)
        print(f"{name:<14}" + "".join(f"{c[k]:>12,}" for k in CLASSES) + f"{sum(c.values()):>9,}")
    print(f"{'all':<14}" + "".join(f"{total[k]:>12,}" for k in CLASSES)
          + f"{sum(total.values()):>9,}")
    print(f"{sum(total.values()):,} cases in {elapsed:.0f} s (seed {args.seed})")
    for name, kind, label, detail in failures[:10]:
        print(f"\n[{name}] {kind}: {label[:300]}\n{detail}")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": elapsed, "seed": args.seed,
                                               "counts": {k: dict(v) for k, v in counts.items()},
                                               "failures": failures[:100]}, indent=2))
    bad = total["traceback"] + total["hang"] + total["non-finite"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
