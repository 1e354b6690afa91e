"""Hyperparameter recipes: per parameter group, the initialization variance and the
learning-rate factor for SGD and AdamW as functions of width ``n``, depth ``L`` and the family
parameter ``s`` (0: neural-tangent scaling, 1: maximal-update scaling), for MLPs at the
activation's critical point and for transformers.

Modules: :mod:`~critheory.theory.recipes.rules` (one rule per group, with its source equation)
and :mod:`~critheory.theory.recipes.recipe` (depth factors, the interaction strength
``L/n^{1−s}``, the :class:`Recipe`). Derivation and sources: ``docs/recipes.md``.
"""
from critheory.theory.recipes.recipe import ParameterGroup, Recipe, interaction, recipe, regime

__all__ = ["ParameterGroup", "Recipe", "interaction", "recipe", "regime"]
