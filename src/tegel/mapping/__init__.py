"""Mapping policies: (graph, system) -> Plan. One policy per chip architecture."""

from tegel.mapping.dataflow import plan_dataflow
from tegel.mapping.gpu import fuse_kernels, plan_gpu
from tegel.mapping.plan import Parallelism, Plan, Step
from tegel.mapping.sharding import shard_graph

__all__ = ["Parallelism", "Plan", "Step", "fuse_kernels", "plan_dataflow", "plan_gpu", "shard_graph"]
