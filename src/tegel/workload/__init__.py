"""The workload IR and its frontends: tensors, ops, graphs, and LLM graphs from configs."""

from tegel.workload.dtypes import DType
from tegel.workload.graph import GraphBuilder, GraphError, verify
from tegel.workload.ir import Graph, Op, OpKind, Role, Tensor
from tegel.workload.llm import Phase, Precision, build_llm_graph
from tegel.workload.model_config import ModelConfig, load_model_config, shipped_models
from tegel.workload.ops import OpWork, work
from tegel.workload.reference import interpret

__all__ = [
    "DType",
    "Graph",
    "GraphBuilder",
    "GraphError",
    "ModelConfig",
    "Op",
    "OpKind",
    "OpWork",
    "Phase",
    "Precision",
    "Role",
    "Tensor",
    "build_llm_graph",
    "interpret",
    "load_model_config",
    "shipped_models",
    "verify",
    "work",
]
