"""tegel: an open, executable model of AI-native inference hardware and the toolkit to design it.

    import tegel
    result = tegel.run("llama-3.1-70b", "dgx-h100", batch=8)
    result.to_dict()["tpot_s"]

Sub-packages import lazily, so `import tegel` stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["curve", "from_torch", "run", "run_graph", "serve"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from tegel.serving.run import run

        return run
    if name == "run_graph":
        from tegel.serving.graph_run import run_graph

        return run_graph
    if name == "serve":
        from tegel.serving.serve import serve

        return serve
    if name == "curve":
        from tegel.serving.curve import curve

        return curve
    if name == "from_torch":
        from tegel.workload.torch_frontend import from_torch

        return from_torch
    raise AttributeError(f"module 'tegel' has no attribute {name!r}")
