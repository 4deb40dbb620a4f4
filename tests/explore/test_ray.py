"""Ray: a local two-worker cluster, started and stopped by the test, gives the local results."""

from __future__ import annotations

from pathlib import Path

import ray

from explore.conftest import write_space
from tegel.explore import explore, load_space


def test_ray_gives_the_same_points_and_results(tmp_path: Path) -> None:
    space = load_space(write_space(tmp_path, "nsga2"))
    local = explore(space, store_path=tmp_path / "local.duckdb", executor="local", workers=2,
                    baseline=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    try:
        assert ray.cluster_resources()["CPU"] == 2
        on_ray = explore(space, store_path=tmp_path / "ray.duckdb", executor="ray",
                         baseline=False)
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    assert on_ray.evaluated == local.evaluated > 0
    assert [p.params for p in on_ray.points] == [p.params for p in local.points]
    assert [p.metrics for p in on_ray.points] == [p.metrics for p in local.points]
