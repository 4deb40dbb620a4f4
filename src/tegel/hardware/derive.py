"""Fill in what a chip description leaves out from its technology node, and say so in `cite`.

Rules (each filled value's cite reads `derived: technology <node>: <rule>`):
- compute: pJ per op of each dtype class = technology MAC energy / 2 on dataflow chips; on a GPU
  that names `same_silicon_as` (a card of the same die), that part's pJ/op x (clock ratio)^a
  (DVFS exponent, data/gpu_power.yaml); on other GPUs
  (TDP - idle - active) x compute_power_fraction / peak ops/s of that class, where active =
  active_power_fraction x (TDP - idle) (data/gpu_power.yaml: the power a serving GPU draws above
  idle whatever its kernels do, and what its arithmetic would draw at the nominal peak as a share
  of the rest — above 1: a large GEMM throttles at the power limit; sources there) — bottom-up
  multiplier energies leave out the SIMT overhead that dominates a GPU's arithmetic.
- tile storage: SRAM read energy of a macro of `macro_bytes` (default: min(capacity, 8 KiB) for
  registers, min(capacity, 32 KiB) otherwise); write = read x write factor.
- chip storage: SRAM read energy of a min(capacity, 1 MiB) macro plus wire energy over half the
  die edge (the mean distance from a tile to a chip-level bank).
- leakage of a level: technology SRAM leakage per MiB x capacity.
- NoC: hop length = tile pitch (sqrt(compute area / tiles)) on a mesh/torus/ring, half the die edge
  on a crossbar/hierarchical network; pJ/bit/hop = wire pJ/bit/mm x hop length + router pJ/bit.
- off-chip memory: pJ/bit of its DRAM kind; chip-to-chip links: pJ/bit of their link kind.
"""

from __future__ import annotations

import math
from functools import lru_cache

import yaml

from tegel.errors import TegelError, short
from tegel.hardware.schema import Chip, Noc, StorageLevel
from tegel.hardware.system import ChipLink, System
from tegel.hardware.technology import DATA_DIR, Technology

_KIB = 1024.0
_MIB = 1024.0 * 1024.0


def complete_chip(chip: Chip, tech: Technology) -> Chip:
    """`chip` with every energy, leakage and NoC figure it left out derived from `tech`."""
    tag = f"derived: technology {tech.node}"
    compute = chip.tiles.compute
    pj = dict(compute.pj_per_op)
    cite = dict(compute.cite)
    fraction = gpu_compute_power_fraction() if chip.architecture == "gpu" else None
    active = gpu_active_power_fraction()
    same = _same_silicon(chip)
    for dtype in compute.dtypes:
        if dtype in pj:
            continue
        if same is not None and dtype in same.tiles.compute.pj_per_op:
            a = dvfs_energy_exponent()
            scale = (chip.clock_hz / same.clock_hz) ** a
            pj[dtype] = same.tiles.compute.pj_per_op[dtype] * scale
            cite[f"pj_per_op.{dtype}"] = (
                f"derived: {same.name}'s {dtype} pJ/op (the same die) x (clock {chip.clock_hz:.3g}"
                f" / {same.clock_hz:.3g} Hz)^{a:g} (energy per op ~ clock^a under DVFS, "
                "hardware/data/gpu_power.yaml)")
        elif fraction is not None:
            peak = chip.peak_flops_per_s(dtype)
            budget_w = (chip.tdp_w - chip.idle_w) * (1.0 - active)
            pj[dtype] = 1e12 * budget_w * fraction / peak  # type: ignore[index]
            cite[f"pj_per_op.{dtype}"] = (
                f"derived: (TDP - idle) x (1 - {active:g} active) x {fraction:g} / peak {dtype} "
                "ops/s (hardware/data/gpu_power.yaml: what arithmetic would draw at the nominal "
                "peak, as a share of the power above the active floor)")
        else:
            pj[dtype] = tech.pj_per_op(dtype)  # type: ignore[index]
            cite[f"pj_per_op.{dtype}"] = (
                f"{tag}: MAC energy / 2 ({tech.rules.get('mac_pj.' + dtype, '')})"
            )
    compute = compute.model_copy(update={"pj_per_op": pj, "cite": cite})
    tile_levels = tuple(_complete_level(lv, tech, None) for lv in chip.tiles.storage)
    wire_mm = chip.die_edge_mm() / 2.0
    chip_levels = tuple(_complete_level(lv, tech, wire_mm) for lv in chip.global_storage)
    tiles = chip.tiles.model_copy(update={"compute": compute, "storage": tile_levels})
    update: dict[str, object] = {
        "tiles": tiles,
        "global_storage": chip_levels,
        "noc": _complete_noc(chip, tech),
    }
    mem = chip.offchip
    if mem is not None and mem.pj_per_bit is None:
        update["offchip"] = mem.model_copy(
            update={
                "pj_per_bit": tech.dram(mem.kind),
                "cite": {**mem.cite, "pj_per_bit": f"{tag}: DRAM energy of {mem.kind}"},
            }
        )
    return chip.model_copy(update=update)


def _same_silicon(chip: Chip) -> Chip | None:
    """The loaded preset `chip.same_silicon_as` names (a GPU of the same die), or None.

    A die's energy per op is the silicon's: a lower-power card of the same die (H100 PCIe at
    350 W, H100 NVL at 400 W) spends per op what the flagship spends at the same clock, so under
    its lower power limit it throttles further — where deriving it from its own TDP would let it
    sustain the same share of its peak as the 700 W part."""
    if chip.architecture != "gpu" or not chip.same_silicon_as:
        return None
    from tegel.hardware.loader import load_chip  # the loader completes chips through here

    ref = load_chip(chip.same_silicon_as)
    if ref.architecture != "gpu" or ref.same_silicon_as:
        raise TegelError(f"{chip.name}: same_silicon_as {short(chip.same_silicon_as)} must name a GPU "
                         "preset that derives its own energies")
    return ref


@lru_cache(maxsize=1)
def _gpu_power() -> dict[str, object]:
    data = yaml.safe_load((DATA_DIR / "gpu_power.yaml").read_text(encoding="utf-8"))
    return dict(data)


def gpu_compute_power_fraction() -> float:
    """What a GPU's arithmetic would draw at its nominal peak rate, as a share of the board power
    above its active floor (data/gpu_power.yaml, with its source; package data, read once)."""
    return float(_gpu_power()["compute_power_fraction"])  # type: ignore[arg-type]


def gpu_active_power_fraction() -> float:
    """Share of (TDP - idle) a serving GPU draws whatever its kernels do (data/gpu_power.yaml)."""
    return float(_gpu_power()["active_power_fraction"])  # type: ignore[arg-type]


def gpu_sustained_share() -> float:
    """Share of its nominal peak a GPU's power-limited GEMM sustains at the board limit: a step
    whose compute is busy at a lower share draws that busy power for its busy time
    (data/gpu_power.yaml: sustained_share; evaluate/terms.py: step_terms)."""
    return float(_gpu_power()["sustained_share"])  # type: ignore[arg-type]


def dvfs_energy_exponent() -> float:
    """a in energy per op ~ clock^a under a power limit (voltage follows the clock;
    data/gpu_power.yaml: dvfs_energy_exponent; evaluate/terms.py: power_capped)."""
    return float(_gpu_power()["dvfs_energy_exponent"])  # type: ignore[arg-type]


def busy_share(chip: Chip) -> float:
    """The sustained share below which a chip's compute is charged its busy power rather than
    per useful op: `gpu_sustained_share` on a GPU, 0 (per op only) on a dataflow chip."""
    return gpu_sustained_share() if chip.architecture == "gpu" else 0.0


def active_power_w(chip: Chip) -> float:
    """Power a chip draws above idle while it serves, whatever its work: on a GPU
    active_power_fraction x (TDP - idle) (clocks, warp scheduling, leakage at the operating
    voltage); 0 on a dataflow chip, whose bottom-up energies have no such term (an asymmetry in
    its favour, like its arithmetic's)."""
    if chip.architecture != "gpu":
        return 0.0
    return gpu_active_power_fraction() * max(0.0, chip.tdp_w - chip.idle_w)


def _complete_level(lv: StorageLevel, tech: Technology, wire_mm: float | None) -> StorageLevel:
    tag = f"derived: technology {tech.node}"
    cite = dict(lv.cite)
    update: dict[str, object] = {}
    if wire_mm is None:
        default_macro = 8 * _KIB if lv.kind == "registers" else 32 * _KIB
        macro = lv.macro_bytes or min(lv.capacity_bytes, default_macro)
        wire_pj = 0.0
        how = f"SRAM macro of {macro:.0f} B"
    else:
        macro = lv.macro_bytes or min(lv.capacity_bytes, _MIB)
        wire_pj = tech.wire_pj_per_bit_per_mm * wire_mm
        how = f"SRAM macro of {macro:.0f} B + wire over {wire_mm:.1f} mm"
    if lv.read_pj_per_bit is None:
        update["read_pj_per_bit"] = tech.sram_read_pj_per_bit(macro) + wire_pj
        cite["read_pj_per_bit"] = f"{tag}: {how}"
    if lv.write_pj_per_bit is None:
        update["write_pj_per_bit"] = tech.sram_write_pj_per_bit(macro) + wire_pj
        cite["write_pj_per_bit"] = f"{tag}: {how}, write factor {tech.sram_write_factor:g}"
    if lv.leakage_w is None:
        update["leakage_w"] = tech.sram_leakage_w_per_mib * lv.capacity_bytes / _MIB
        cite["leakage_w"] = f"{tag}: {tech.sram_leakage_w_per_mib:g} W/MiB"
    if not update:
        return lv
    return lv.model_copy(update={**update, "cite": cite})


def _complete_noc(chip: Chip, tech: Technology) -> Noc:
    noc = chip.noc
    tag = f"derived: technology {tech.node}"
    cite = dict(noc.cite)
    hop_mm = noc.hop_length_mm
    if hop_mm is None:
        if noc.topology in ("crossbar", "hierarchical"):
            hop_mm = chip.die_edge_mm() / 2.0
            cite["hop_length_mm"] = "derived: half the die edge (tile to chip-level bank)"
        else:
            hop_mm = math.sqrt(chip.die_area_mm2 * chip.package.compute_dies / chip.tile_count)
            cite["hop_length_mm"] = "derived: tile pitch, sqrt(compute die area / tiles)"
    per_mm = noc.pj_per_bit_per_mm
    if per_mm is None:
        per_mm = tech.wire_pj_per_bit_per_mm
        cite["pj_per_bit_per_mm"] = f"{tag}: {tech.rules['wire_pj_per_bit_per_mm']}"
    per_hop = noc.pj_per_bit_per_hop
    if per_hop is None:
        per_hop = per_mm * hop_mm + tech.router_pj_per_bit
        cite["pj_per_bit_per_hop"] = (
            f"{tag}: wire x hop length + router {tech.router_pj_per_bit:.3g} pJ/bit"
        )
    return noc.model_copy(
        update={
            "hop_length_mm": hop_mm,
            "pj_per_bit_per_mm": per_mm,
            "pj_per_bit_per_hop": per_hop,
            "cite": cite,
        }
    )


def complete_link(link: ChipLink | None, tech: Technology) -> ChipLink | None:
    """A chip-to-chip link with its pJ/bit filled from the technology library's link table."""
    if link is None or link.pj_per_bit is not None:
        return link
    return link.model_copy(
        update={
            "pj_per_bit": tech.link(link.kind),
            "cite": {**link.cite, "pj_per_bit": f"derived: technology link energy of {link.kind}"},
        }
    )


def complete_system(system: System, tech: Technology) -> System:
    """`system` with link energies filled in (its chip is completed when loaded)."""
    return system.model_copy(
        update={
            "scale_up": complete_link(system.scale_up, tech),
            "scale_out": complete_link(system.scale_out, tech),
        }
    )
