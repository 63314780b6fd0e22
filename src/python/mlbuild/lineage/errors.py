"""Error types of the lineage store.

They reuse the runtime's hierarchy, so `exit_code` means the same everywhere in mlbuild:
2 for the user's mistakes (unknown or ambiguous hash, bad record body), 3 for a broken
store or machine. `cli.py` turns them into exit codes in one place.
"""

from __future__ import annotations

from typing import Sequence

from mlbuild.runtime.errors import MLBuildError, PlatformError, UserError

__all__ = ["MLBuildError", "PlatformError", "UserError", "RecordError", "NotFoundError", "AmbiguousError", "StoreError"]


class RecordError(UserError):
    """A record body is malformed; the message names the field and the fix."""


class NotFoundError(UserError):
    """No record mentions the hash, job name or image reference."""


class AmbiguousError(UserError):
    """A hash prefix matches more than one full hash."""

    def __init__(self, query: str, candidates: Sequence[str]) -> None:
        self.candidates = list(candidates)
        lines = "\n".join(f"  {c}" for c in self.candidates)
        super().__init__(
            f"{query!r} is ambiguous; it is a prefix of {len(self.candidates)} hashes:\n{lines}\nFix: give more characters."
        )


class StoreError(PlatformError):
    """The store on disk is unreadable or corrupt."""
