"""Benchmarks: protocols, runners and reports (more arrive with the GIM)."""

from .known_targets import KnownTargetsResult, known_targets_targets, run_known_targets

__all__ = ["KnownTargetsResult", "known_targets_targets", "run_known_targets"]
