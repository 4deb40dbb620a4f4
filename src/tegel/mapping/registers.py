"""Operand traffic a dataflow plan adds around the array: register accesses in the PEs and staging
through on-chip SRAM on the way to and from off-chip memory.

Both are bytes at storage levels of a step, so every evaluator prices them as it prices any other
bytes (`evaluate.terms.level_energy_j` for the energy, the level's rate for the time).

**Register files.** A chip whose `pj_per_op` is the bare arithmetic
(`compute.pj_per_op_includes_registers: false`, which needs a systolic array) is charged, for
every MAC of a matmul or convolution, the register accesses its array's dataflow makes, at the
nearest register level that holds the operand (`StorageLevel.holds`; a level without `holds`
holds all three):

- the stationary operand (weight-stationary: the weights; input-stationary: the inputs) is read
  once per MAC and written once per element loaded, MACs / the streamed dimension (M for ws,
  N for is): each element of the stationary tile is loaded once and used by every streamed item;
- a streamed operand (ws: the inputs; is: the weights; output-stationary: both) is latched in
  each PE it passes and forwarded to the next: one write and one read per MAC;
- the partial sum is read and written once per MAC, `accumulator_bits` wide (32 where the array
  does not say): passed down the column (ws, is) or accumulated in place (os).

Operands are their element bits (an int8 register holds 8 bits; block scales are applied
outside the array). Register files work in step with the MACs: their accesses take the array's
own cycles, which the compute term already counts (`hardware.systolic`), so register levels are
an energy, not a time, of a step (`evaluate.terms.Rates.timed`). Attention and expert ops are not charged
here (they carry no weight-stationary operand roles): a limitation, stated in docs/peers.md.

**Staging.** An operand read from off-chip memory is written into an on-chip SRAM and read from
it on its way to the array, and a result written off chip goes the same way out: one write and
one read at the outermost on-chip level (nearest the memory) that is not a register file and
keeps that operand (`holds`: a level that never keeps weights is passed by them).
"""

from __future__ import annotations

from dataclasses import dataclass

from tegel.hardware import Chip
from tegel.mapping.conv import array_gemm
from tegel.workload.ir import Op, OpKind, Role, Tensor

_ACCUMULATOR_BITS = 32  # int32 / fp32 partial sums, where the array gives no width


def operand_of(t: Tensor, written: bool) -> str:
    """The operand a tensor is to the array: `outputs` when written, else `weights` for a
    layer's weights, `inputs` for everything else read."""
    if written:
        return "outputs"
    return "weights" if t.role is Role.WEIGHT else "inputs"


@dataclass(frozen=True, slots=True)
class OperandPaths:
    """Where a chip's operands pass on their way between off-chip memory and the array (module
    doc), as indices into `chip.levels()`."""

    offchip: frozenset[int]
    staging: dict[str, int]  # operand -> the on-chip level it is staged in
    registers: dict[str, int]  # operand -> its register level (charged chips only)
    dataflow: str
    accumulator_bits: dict[str, int]
    conv_unroll: str

    @classmethod
    def of(cls, chip: Chip) -> OperandPaths:
        levels = chip.levels()
        compute = chip.tiles.compute
        arr = compute.systolic
        operands = ("inputs", "weights", "outputs")
        staging: dict[str, int] = {}
        registers: dict[str, int] = {}
        for i, lv in enumerate(levels):
            for o in operands:
                if lv.scope != "offchip" and lv.kind != "registers" and lv.keeps(o):
                    staging[o] = i  # the last such level: nearest the memory
                if (not compute.pj_per_op_includes_registers and lv.kind == "registers"
                        and lv.keeps(o)):
                    registers.setdefault(o, i)
        return cls(frozenset(i for i, lv in enumerate(levels) if lv.scope == "offchip"),
                   staging, registers, arr.dataflow if arr else "",
                   {str(k): v for k, v in arr.accumulator_bits.items()} if arr else {},
                   arr.conv_unroll if arr else "im2col")

    def staged(self, level: int, operand: str) -> int | None:
        """The level an operand homed at `level` is staged in (None: not off chip, or no
        on-chip level keeps it)."""
        return self.staging.get(operand) if level in self.offchip else None

    def register_bytes(self, op: Op, share: float, compute_class: str
                       ) -> list[tuple[int, float, float]]:
        """(level, bytes read, bytes written) at register levels of one occurrence of `op`,
        `share` of it on this chip (module doc); empty unless the chip is charged for them."""
        if not self.registers or op.kind not in (OpKind.MATMUL, OpKind.CONV2D):
            return []
        g = array_gemm(op, self.conv_unroll)
        macs = g.m * g.n * g.k * g.taps * share
        if not macs:
            return []
        bits = {"inputs": op.inputs[0].dtype.info.element_bits,
                "weights": op.inputs[1].dtype.info.element_bits,
                "outputs": self.accumulator_bits.get(compute_class, _ACCUMULATOR_BITS)}
        stationary, streamed_length = {"weight_stationary": ("weights", g.m),
                                       "input_stationary": ("inputs", g.n)}.get(
            self.dataflow, ("outputs", 0.0))
        out: dict[int, list[float]] = {}
        for operand, level in self.registers.items():
            if operand == stationary and operand != "outputs":
                reads, writes = macs, macs / streamed_length
            else:  # streamed and forwarded, or a partial sum read and written
                reads, writes = macs, macs
            acc = out.setdefault(level, [0.0, 0.0])
            acc[0] += reads * bits[operand] / 8
            acc[1] += writes * bits[operand] / 8
        return [(level, rd, wr) for level, (rd, wr) in out.items()]
