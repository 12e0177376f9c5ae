"""The planning gate: remediation planning refuses to run while the latest evidence shows a
blocking check failed (e.g. `inventory_fresh`: plans made from a stale inventory would act on
machines that may no longer look like that).

Read from the lake, not the warehouse: the newest evidence row of every (framework, control,
check), and the check definition recorded in it (so the gate judges with the blocking flag the
evaluation used). `fail` and `error` block (a blocking check that could not run proves nothing);
`waived` does not: a person accepted those failures. No evidence yet means no gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qlrf_pipelines.compliance.evidence import definition_of, latest_evidence, read_evidence

BLOCKING_STATUSES = ("fail", "error")


@dataclass(frozen=True)
class BlockingFailure:
    check_id: str
    status: str
    controls: tuple[str, ...]  # "framework_id/control_id"
    evaluated_at: str
    failing_asset_ids: tuple[str, ...]
    error: str | None

    def describe(self, shown: int = 5) -> str:
        ids = list(self.failing_asset_ids)
        what = f"{len(ids)} failing: {', '.join(ids[:shown])}{' …' if len(ids) > shown else ''}" if ids else (self.error or "")
        return f"{self.check_id} {self.status} at {self.evaluated_at} ({', '.join(self.controls)}; {what})"


def blocking_failures(lake_dir: Path) -> list[BlockingFailure]:
    """Blocking checks whose newest evidence failed or errored, one entry per check."""
    found: dict[str, BlockingFailure] = {}
    for row in latest_evidence(read_evidence(Path(lake_dir))):
        if row["status"] not in BLOCKING_STATUSES or not definition_of(row).get("blocking"):
            continue
        check_id = row["check_id"]
        control = f"{row['framework_id']}/{row['control_id']}"
        earlier = found.get(check_id)
        controls = (earlier.controls if earlier else ()) + (control,)
        found[check_id] = BlockingFailure(
            check_id, row["status"], controls, row["evaluated_at"].isoformat(),
            tuple(row.get("failing_asset_ids") or ()), row.get("error"),
        )
    return [found[k] for k in sorted(found)]
