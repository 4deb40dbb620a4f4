"""The workload IR and its frontends: tensors, ops, graphs, and LLM graphs from configs."""

from tegel.workload.dtypes import DType
from tegel.workload.graph import GraphBuilder, GraphError, verify
from tegel.workload.ir import Graph, Op, OpKind, OpRole, Role, Tensor
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig, load_model_config, shipped_models
from tegel.workload.ops import Gemm, OpWork, gemm_dims, work
from tegel.workload.reference import interpret
from tegel.workload.roles import assign_roles

__all__ = [
    "DType",
    "Gemm",
    "Graph",
    "GraphBuilder",
    "GraphError",
    "ModelConfig",
    "Op",
    "OpKind",
    "OpRole",
    "OpWork",
    "Phase",
    "Precision",
    "Role",
    "Tensor",
    "assign_roles",
    "build_llm_graph",
    "gemm_dims",
    "interpret",
    "load_model_config",
    "shipped_models",
    "verify",
    "work",
]
