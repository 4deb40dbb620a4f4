"""Economics: die area, cost, total cost of ownership, footprint, the energy floor and the claim
check — what a machine costs to build, own and house, and how far it is from the physical floor.

    from tegel.economics import claim, load_assumptions
    a = load_assumptions().with_overrides({"pue": 1.2})
    c = claim("llama-3.1-70b", "craftwerk-station", "dgx-h100", a)
    c.to_dict()["ratios"]["energy"]

Every assumption is in `data/economics.yaml` with its source (rules: docs/economics.md); the
assumptions are a value the functions take, never a global.
"""

from tegel.economics.area import Area, chip_area
from tegel.economics.assumptions import Assumptions, load_assumptions
from tegel.economics.claim import Claim, ClaimOptions, Workload, claim, evaluate_system
from tegel.economics.cost import CapitalCost, ChipCost, chip_cost, system_capital
from tegel.economics.floor import EnergyFloor, energy_floor
from tegel.economics.tco import Footprint, Tco, footprint, interactive_run, tco

__all__ = [
    "Area",
    "Assumptions",
    "CapitalCost",
    "ChipCost",
    "Claim",
    "ClaimOptions",
    "EnergyFloor",
    "Footprint",
    "Tco",
    "Workload",
    "chip_area",
    "chip_cost",
    "claim",
    "energy_floor",
    "evaluate_system",
    "footprint",
    "interactive_run",
    "load_assumptions",
    "system_capital",
    "tco",
]
