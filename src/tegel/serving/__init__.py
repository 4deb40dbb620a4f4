"""LLM serving on top of per-step costs: scenarios, batching, and the `run` entry point."""

from tegel.serving.run import RunResult, run

__all__ = ["RunResult", "run"]
