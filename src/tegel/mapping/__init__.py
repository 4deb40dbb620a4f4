"""Mapping policies: (graph, system) -> Plan. One policy per chip architecture (`registry`)."""

from tegel.mapping.gpu import fuse_kernels, plan_gpu
from tegel.mapping.params import DataflowParams, GpuParams, Params, default_params, load_params
from tegel.mapping.plan import Parallelism, Plan, PlanRequest, Step, StepKind
from tegel.mapping.registry import POLICIES, Planned, Policy, policy_for
from tegel.mapping.sharding import shard_graph

__all__ = ["POLICIES", "DataflowParams", "GpuParams", "Parallelism", "Params", "Plan", "PlanRequest",
           "Planned", "Policy", "Step", "StepKind", "default_params", "fuse_kernels",
           "load_params", "plan_gpu", "policy_for", "shard_graph"]
