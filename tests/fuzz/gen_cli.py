"""Fuzz cases for the CLI arguments: cheap commands with flags given nonsense values
(inf, nan, negatives, huge integers, empty and long strings, NUL bytes, folders as files).
thunk() returns the command's stdout (exit 0) or raises TegelError (exit 2 with one
`tegel: error:` line); anything else escapes as itself."""

from __future__ import annotations

import contextlib
import io
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tegel.errors import TegelError

VALUES = ("inf", "-inf", "nan", "NaN", "0", "-0", "-5", "1", "2", "7", "1e308", "1e-300", "1e3",
          "3.5", str(10**12), str(10**400), "", " ", "abc", "x" * 300, "\x00", "--json", "-1e999",
          "0x10", "1_000", "٣", "/", "/nonexistent/dir/file.json", "h100-sxm", "llama-3.1-8b",
          "old.json")
EXISTING = "old.json"  # a file in the scratch folder: written over only with --force

# (fixed argv, flags that take a value) of commands that answer in well under a second
COMMANDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("cost", "h100-sxm"), ("--years", "--pue", "--utilization", "--rack-power-kw",
                            "--electricity-usd-per-kwh", "--facility-usd-per-w",
                            "--gross-margin", "--set", "--target")),
    (("run", "llama-3.1-8b", "--on", "h100-sxm", "--output", "4"),
     ("--input", "--batch", "--tp", "--max-batch", "--precision")),
    (("inspect", "llama-3.1-8b"), ("--input", "--kv", "--batch")),
    (("area", "h100-sxm"), ("--set",)),
    (("hw", "show"), ()),
    (("plan", "gemm"), ()),
    (("claim", "llama-3.1-8b", "--on", "h100-sxm", "--vs", "a100-80gb"),
     ("--target", "--years", "--rack-power-kw", "--pue", "--rows", "--claimed", "--input",
      "--output")),
    (("plan", "llama-3.1-8b", "--on", "ref-dataflow"), ("--stages", "--batch", "--pp")),
    (("run", "llama-3.1-8b", "--on", "h100-sxm", "--sim", "event", "--output", "2",
      "--input", "16"), ("--trace",)),
    (("validate",), ("--write", "--folds")),  # --write-folds to a writable DIR: a real fit
)



def run_cli(argv: list[str]) -> str:
    """`tegel ARGV` in this process: stdout on exit 0, TegelError on a one-line exit 2.
    An existing file (EXISTING) changed without --force is an AssertionError."""
    from tegel.cli import main

    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / EXISTING
        old.write_text("keep")
        try:  # in a scratch folder: a fuzzed output name is written there, not into the checkout
            with contextlib.chdir(scratch), contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                rc = main(argv)
        except SystemExit as exit_:
            rc = exit_.code if isinstance(exit_.code, int) else 1
        if "--force" not in argv and (not old.is_file() or old.read_text() != "keep"):
            raise AssertionError(f"{EXISTING} overwritten without --force")
    text = err.getvalue()
    if rc == 0:
        return out.getvalue()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if rc == 2 and lines and lines[-1].startswith("tegel") and "error:" in lines[-1]:
        if len([ln for ln in lines if "error:" in ln]) != 1 or "Traceback" in text:
            raise AssertionError(f"not a one-line error: {text[:500]!r}")
        raise TegelError(lines[-1])
    raise AssertionError(f"exit {rc}: {text[-500:]!r}")


def argvs(seed: int, n: int) -> Iterator[list[str]]:
    """n command lines: a cheap command with one to three flags set to fuzzed values."""
    rng = random.Random(seed)
    for _ in range(n):
        base, flags = rng.choice(COMMANDS)
        argv = list(base)
        if base[:2] == ("plan", "gemm"):
            argv += [rng.choice(VALUES) for _ in range(3)]
        elif base == ("hw", "show"):
            argv.append(rng.choice(VALUES))
        for _ in range(rng.randint(1, 3)):
            if not flags:
                break
            flag = rng.choice(flags)
            value = rng.choice(VALUES)
            if flag == "--set":
                value = f"{rng.choice(('pue', 'years', 'utilization', 'x', ''))}={value}"
            argv += [flag, value]
        if base[0] == "claim":  # a whole claim takes seconds: most cases end at a refusal
            argv += (["--no-tornado", "--no-equal-load"] if rng.random() < 0.05
                     else ["--target", rng.choice(("0", "inf", "-1", "nan"))])
        if base[0] == "validate":  # never the whole validation or fit (a writable --write DIR
            # would start minutes of fitting: not a hang): an unwritable or bad path each
            argv += ["--calibrate", "--write", rng.choice(("/proc", "", "/nonexistent/x.yaml",
                                                           "x" * 300, "/proc/version"))]
        if rng.random() < 0.2:
            argv.append("--json")
        if rng.random() < 0.1:
            argv.append("--force")
        yield argv


def cases(seed: int, n: int) -> Iterator[tuple[str, Callable[[], object]]]:
    for argv in argvs(seed, n):
        yield "tegel " + " ".join(repr(a) if not a or " " in a else a[:40] for a in argv), (
            lambda argv=argv: run_cli(argv))
