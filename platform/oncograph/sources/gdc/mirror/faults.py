"""The mirror's fault injection; it lives in :mod:`oncograph.sources.faults`, shared with the PDC stand-in."""

from oncograph.sources.faults import ERROR_STATUSES, FaultConfig, FaultCounters, FaultDecision, FaultInjector

__all__ = ["ERROR_STATUSES", "FaultConfig", "FaultCounters", "FaultDecision", "FaultInjector"]
