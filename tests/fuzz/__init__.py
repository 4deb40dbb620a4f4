"""Fuzz input generators, one module per input surface (issue 18); tests and benchmarks/fuzz.py
import `cases(seed, n)` from each."""
