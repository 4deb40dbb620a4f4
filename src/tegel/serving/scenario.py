"""What is asked of a run: the scenario (model, batch, lengths, formats, decoding) and the
options that constrain how it is mapped (parallelism, stages, software, evaluator)."""

from __future__ import annotations

from dataclasses import dataclass

from tegel.errors import TegelError
from tegel.hardware import System
from tegel.serving.speculative import Speculation
from tegel.workload.dtypes import DType
from tegel.workload.llm import Precision
from tegel.workload.model_config import ModelConfig

SIMULATORS = ("analytical", "event")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A model serving a batch of requests of fixed lengths in fixed formats.

    `batch` None means "as large as fits" (chosen for maximum throughput). With beam search each
    request decodes `beams` hypotheses that share its prompt's KV cache; with `speculation`
    each decode iteration drafts and verifies (serving/speculative.py).
    """

    model: ModelConfig
    batch: int | None
    input_tokens: int
    output_tokens: int
    precision: Precision
    beams: int = 1
    speculation: Speculation | None = None

    def __post_init__(self) -> None:
        if self.input_tokens < 1 or self.output_tokens < 1:
            raise TegelError("input and output tokens must be >= 1")
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
            raise TegelError(f"batch: expected a positive integer or 'auto', got {self.batch!r}")
        if self.beams < 1:
            raise TegelError(f"beams: expected a positive integer, got {self.beams}")
        if self.speculation is not None and self.beams > 1:
            raise TegelError("--speculative: not modelled with beam search (beams > 1)")
        limit = self.model.max_position_embeddings
        if self.model.learned_positions and self.context_tokens > limit:
            raise TegelError(f"{self.model.name}: {self.input_tokens} prompt + {self.output_tokens}"
                             f" generated tokens need {self.context_tokens} positions; the model "
                             f"has {limit} (max_position_embeddings)")

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Constraints on the mapping (None: searched) and the evaluator to use.

    tp, pp, ep: parallel degrees; stages: pipeline stages (dataflow chips: regions per chip x pp);
    max_batch_per_replica caps `batch="auto"`; software: a GPU software generation (a year of
    `mapping/data/gpu.yaml`; None: current); sim: "analytical" or "event"; beams: the
    scenario's beam width (it sets Scenario.beams); in_flight: a fixed batch is the number of
    sequences an in-flight batching engine keeps running (a steady state, as `batch="auto"`
    always is), not a static batch that starts and ends together.
    """

    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    stages: int | None = None
    max_batch_per_replica: int = 2048
    software: str | None = None
    sim: str = "analytical"
    beams: int = 1  # beam search: hypotheses per request (MLPerf GPT-J: 4)
    in_flight: bool = False

    def __post_init__(self) -> None:
        if self.sim not in SIMULATORS:
            raise TegelError(f"sim: expected 'analytical' or 'event', got {self.sim!r}")
        for flag, value in (("tp", self.tp), ("pp", self.pp), ("ep", self.ep),
                            ("stages", self.stages), ("beams", self.beams),
                            ("max_batch_per_replica", self.max_batch_per_replica)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise TegelError(f"{flag}: expected a positive integer, got {value!r}")


def resolve_precision(system: System, precision: Precision | str | None) -> Precision:
    """A Precision from a name ('fp8'), an object, or None/'auto' (bf16 where the chip has it)."""
    if isinstance(precision, Precision):
        return precision
    if precision is None or precision == "auto":
        classes = system.chip.dtypes
        for dtype in (DType.BF16, DType.FP16, DType.FP8_E4M3, DType.INT8):
            if dtype.compute_class in classes:
                return Precision.uniform(dtype)
        raise TegelError(f"{system.chip.name}: no supported format among bf16, fp16, fp8, int8")
    try:
        return Precision.uniform(DType.parse(precision))
    except ValueError as err:
        raise TegelError(f"precision: {err}") from None
