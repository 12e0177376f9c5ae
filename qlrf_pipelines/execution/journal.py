"""The action journal: what was applied for which task and plan, so a phase run twice changes
nothing the second time (a retried Dagster run resumes instead of repeating changes).

The key is (task_id, plan_hash, dry_run, phase, asset_id, action). dry_run is part of the key so a
dry run can never mark a real change as already made. Every attempt is recorded, failed ones too:
a failed action is not retried under the same task (a person looks at it first).
"""

from __future__ import annotations

from typing import Protocol

JournalKey = tuple[str, str, str]  # (phase name, asset_id, action)


class ActionJournal(Protocol):
    def record(
        self,
        task_id: str,
        plan_hash: str,
        phase: str,
        asset_id: str,
        action: str,
        dry_run: bool,
        status: str,
        details: dict,
    ) -> bool:
        """Store one applied action; False (and nothing stored) if that key is already recorded."""
        ...

    def recorded(self, task_id: str, plan_hash: str, *, dry_run: bool) -> set[JournalKey]:
        """The (phase, asset_id, action) already recorded for this task, plan and mode."""
        ...


class InMemoryJournal:
    """A journal for tests and single-process use."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self._keys: set[tuple] = set()

    def record(self, task_id, plan_hash, phase, asset_id, action, dry_run, status, details) -> bool:
        key = (task_id, plan_hash, bool(dry_run), phase, asset_id, action)
        if key in self._keys:
            return False
        self._keys.add(key)
        self.entries.append(
            {
                "task_id": task_id,
                "plan_hash": plan_hash,
                "phase": phase,
                "asset_id": asset_id,
                "action": action,
                "dry_run": bool(dry_run),
                "status": status,
                "details": dict(details),
            }
        )
        return True

    def recorded(self, task_id: str, plan_hash: str, *, dry_run: bool) -> set[JournalKey]:
        return {
            (phase, asset_id, action)
            for (t, h, d, phase, asset_id, action) in self._keys
            if t == task_id and h == plan_hash and d == bool(dry_run)
        }
