"""Evaluators of a plan; they share the Cost record."""

from tegel.evaluate.analytical import PhaseCost, StepCost, evaluate
from tegel.evaluate.cost import CATEGORIES, Category, Cost

__all__ = ["CATEGORIES", "Category", "Cost", "PhaseCost", "StepCost", "evaluate"]
