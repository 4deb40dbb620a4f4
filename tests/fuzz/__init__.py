"""Input generators of the fuzz campaign (issue 18), one module per input surface: each
`gen_*.py` has `cases(seed, n)` yielding (label, thunk); thunk() returns a result or raises
TegelError. benchmarks/fuzz.py runs them all; the test suite runs a CI-sized sample."""
