"""Shared pieces of the external-code backends."""

from __future__ import annotations


class JobProblem(Exception):
    """Why one exported job cannot be imported: the field (file or setting) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class CodeNotInstalled(RuntimeError):
    """A direct run asked for a code that is not installed here (one line: what to set)."""
