"""Processing between sources and sinks: label rules, timestamps and limits, per job."""

from .process import Outcome, Processor

__all__ = ["Outcome", "Processor"]
