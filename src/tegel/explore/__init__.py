"""Design-space exploration: spaces over chip templates and their systems, searched (grid,
random, Optuna TPE and NSGA-II) on a process pool or a Ray cluster, every point evaluated by the
engine of `tegel run` / `tegel claim`, results in an embedded DuckDB store (docs/explore.md).

    from tegel.explore import load_space, explore
    result = explore(load_space("examples/craftwerk-70b.yaml"), trials=200)
"""

from __future__ import annotations

from tegel.explore.run import ExploreResult, explore
from tegel.explore.space import Space, load_space

__all__ = ["ExploreResult", "Space", "explore", "load_space"]
