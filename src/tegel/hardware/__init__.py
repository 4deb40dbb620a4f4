"""Hardware as data: chips, systems and the technology figures they draw on, loaded from YAML.

chip = load_chip("h100-sxm")          # or a chip / chip-template YAML file
chip.peak_flops_per_s("bf16")         # 9.894e14
chip.levels()                          # storage nearest first, with pJ/bit and bytes/s
system = load_system("dgx-h100")      # a chip name gives a one-chip system
tech = load_technology("5nm")
"""

from tegel.hardware.fields import DTYPE_CLASSES, Source
from tegel.hardware.figures import summarize
from tegel.hardware.loader import PresetInfo, list_presets, load_chip, load_system, validate_file
from tegel.hardware.schema import (
    Chip,
    ComputeUnit,
    MemoryLevel,
    Noc,
    OffchipMemory,
    Package,
    StorageLevel,
    SystolicArray,
    TileGrid,
)
from tegel.hardware.system import ChipLink, Host, System
from tegel.hardware.technology import Technology, load_technology, node_names
from tegel.hardware.template import ChipTemplate, expand

__all__ = [
    "DTYPE_CLASSES",
    "Chip",
    "ChipLink",
    "ChipTemplate",
    "ComputeUnit",
    "Host",
    "MemoryLevel",
    "Noc",
    "OffchipMemory",
    "Package",
    "PresetInfo",
    "Source",
    "StorageLevel",
    "System",
    "SystolicArray",
    "Technology",
    "TileGrid",
    "expand",
    "list_presets",
    "load_chip",
    "load_system",
    "load_technology",
    "node_names",
    "summarize",
    "validate_file",
]
