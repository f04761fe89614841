"""Provenance: source releases, runs, and where any graph record came from."""

from oncograph.lineage.lookup import lineage_of, whole_document
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, start_run

__all__ = ["RunHandle", "ensure_release", "finish_run", "lineage_of", "start_run", "whole_document"]
