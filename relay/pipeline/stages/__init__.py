"""Promtail's pipeline stage kinds, one module each. `KINDS` loads a kind's module the first time it is used."""

from .base import KINDS, MODULES, BuildContext, Entry, Stage, StageError, register

__all__ = ["KINDS", "MODULES", "BuildContext", "Entry", "Stage", "StageError", "register"]
