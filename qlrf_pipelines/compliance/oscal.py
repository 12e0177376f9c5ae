"""An evidence pack as OSCAL assessment-results, built with compliance-trestle's pydantic models
(so the document is validated as it is made, and again when read back).

Mapping: one Result for the pack (start/end = the first and last evaluation in it); one
Observation per evidence row (a control's check in one evaluation run: counts, hashes, the lake
files it ran on, the failing assets as inventory-item subjects); one Finding per control, its
target status `satisfied` only when every check passed. A waived failure is `not-satisfied` with
reason `other` and the waivers named, because a waiver accepts a failure, it does not fix it.
Controls whose evidence chain is broken carry `integrity: broken` in props and remarks.

Deterministic: every uuid is a uuid5 of evidence hashes and ids, every timestamp comes from the
evidence or the as-of moment, never from the clock.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qlrf_pipelines.compliance.export import ControlReport, Pack

NS = "urn:qlrf:oscal"  # namespace of the props QL-RF defines (names outside OSCAL's own)
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:qlrf:evidence-pack")
_TOKEN_START = re.compile(r"^[A-Za-z_]")
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, "|".join(parts)))


def token(text: str) -> str:
    """An OSCAL token (starts with a letter or _, then letters, digits, . _ -): CIS `1.1` -> `_1.1`."""
    cleaned = _TOKEN_BAD.sub("_", text)
    return cleaned if _TOKEN_START.match(cleaned) else f"_{cleaned}"


def _when(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _props(pairs: list[tuple[str, Any]]) -> list | None:
    from trestle.oscal.common import Property

    props = [Property(name=name, value=str(value), ns=NS) for name, value in pairs if value not in (None, "", [])]
    return props or None


STATE = {  # QL-RF status -> (OSCAL objective state, reason)
    "pass": ("satisfied", "pass"),
    "fail": ("not-satisfied", "fail"),
    "waived": ("not-satisfied", "other"),
    "error": ("not-satisfied", "other"),
    "not_assessed": ("not-satisfied", "other"),
}


def _observation(control: "ControlReport", check, tool_uuid: str, asset_uuids: dict[str, str]):
    from trestle.oscal.common import Observation, Origin, OriginActor, RelevantEvidence, SubjectReference

    ev = check.evidence
    catalog = check.catalog or {}
    waived = {f["asset_id"]: f.get("waiver_id") for f in control.failures if f["evidence_id"] == ev["evidence_id"]}
    subjects = [
        SubjectReference(
            subject_uuid=asset_uuids[asset], type="inventory-item", title=asset,
            props=_props([("status", "waived" if waived.get(asset) else "fail"), ("waiver-id", waived.get(asset))]),
        )
        for asset in sorted(set(ev.get("failing_asset_ids") or []) | set(waived))
    ]
    evidence = [
        RelevantEvidence(
            href=ev["_file"],
            description=f"Evidence row {ev['evidence_id']} in the QL-RF lake (SHA-256 {ev['sha256']}, chained to "
            f"{ev.get('prev_sha256') or 'nothing: first evidence of this check'}).",
        )
    ]
    evidence += [
        RelevantEvidence(href=path, description="Lake snapshot file the warehouse was built from for this evaluation.")
        for path in sorted(ev.get("lake_files") or [])
    ]
    return Observation(
        uuid=stable_uuid("observation", ev["sha256"]),
        title=f"{control.control_id} / {check.check_id}: {check.status}",
        description=catalog.get("description") or catalog.get("title") or f"Check {check.check_id}",
        props=_props([
            ("framework-id", control.framework_id), ("control-id", control.control_id), ("check-id", check.check_id),
            ("check-kind", ev.get("check_kind")), ("check-sha256", ev.get("check_sha256")), ("status", check.status),
            ("checked-count", ev.get("checked_count")), ("failing-count", ev.get("failing_count")),
            ("waived-count", ev.get("waived_count")), ("evidence-id", ev["evidence_id"]), ("sha256", ev["sha256"]),
            ("prev-sha256", ev.get("prev_sha256")), ("run-id", ev.get("run_id")), ("integrity", control.integrity),
        ]),
        methods=["TEST"],
        types=["control-objective"],
        origins=[Origin(actors=[OriginActor(type="tool", actor_uuid=tool_uuid)])],
        subjects=subjects or None,
        relevant_evidence=evidence,
        collected=_when(ev["evaluated_at"]),
        remarks=ev.get("error") or None,
    )


def _finding(control: "ControlReport", observations: list[str], as_of: str):
    from trestle.oscal.common import Finding, FindingTarget, ObjectiveStatus, RelatedObservation

    state, reason = STATE.get(control.status, ("not-satisfied", "other"))
    hashes = sorted(c.evidence["sha256"] for c in control.checks if c.evidence)
    remarks = []
    waivers = sorted({f["waiver_id"] for f in control.failures if f.get("waiver_id")})
    if waivers:
        remarks.append(f"Failures accepted by waivers {', '.join(waivers)} (waived, not passed).")
    if control.status in ("error", "not_assessed"):
        remarks.append(f"Control {control.status.replace('_', ' ')}: " + ", ".join(
            f"{c.check_id} {c.status}" for c in control.checks))
    if control.integrity != "ok":
        remarks.append("INTEGRITY BROKEN: " + " | ".join(control.problems))
    return Finding(
        uuid=stable_uuid("finding", control.framework_id, control.control_id, as_of, *hashes),
        title=f"{control.control_id}: {control.title}",
        description=control.description or control.title,
        props=_props([("control-id", control.control_id), ("status", control.status), ("integrity", control.integrity)]),
        target=FindingTarget(
            type="objective-id",
            target_id=token(control.control_id),
            status=ObjectiveStatus(state=state, reason=reason, remarks=" ".join(remarks) or None),
        ),
        related_observations=[RelatedObservation(observation_uuid=u) for u in observations] or None,
        remarks=" ".join(remarks) or None,
    )


def assessment_results(pack: "Pack"):
    """The pack as a validated trestle AssessmentResults model."""
    from trestle.oscal import OSCAL_VERSION
    from trestle.oscal.assessment_results import AssessmentResults, ImportAp, LocalDefinitions1, Result
    from trestle.oscal.common import (
        ControlSelections,
        InventoryItem,
        Metadata,
        ReviewedControls,
        SelectControlById,
        Status,
        SystemComponent,
    )

    from qlrf_pipelines.compliance.export import iso

    as_of = iso(pack.as_of)
    evidence = pack.evidence_rows()
    hashes = sorted(ev["sha256"] for ev in evidence)
    times = sorted(_when(ev["evaluated_at"]) for ev in evidence) or [pack.as_of]
    document_uuid = stable_uuid("assessment-results", pack.framework_id, as_of, *hashes)
    tool_uuid = stable_uuid("tool", "qlrf")
    assets = sorted({a for ev in evidence for a in (ev.get("failing_asset_ids") or [])}
                    | {f["asset_id"] for c in pack.controls for f in c.failures})
    asset_uuids = {a: stable_uuid("asset", a) for a in assets}
    sites = {f["asset_id"]: f.get("site_id") for c in pack.controls for f in c.failures}
    observations, findings = [], []
    for control in pack.controls:
        made = [_observation(control, check, tool_uuid, asset_uuids) for check in control.checks if check.evidence]
        observations += made
        findings.append(_finding(control, [o.uuid for o in made], as_of))
    title = pack.framework.get("title") or pack.framework_id
    catalog_file = pack.catalog_files.get("compliance_controls")
    result = Result(
        uuid=stable_uuid("result", document_uuid),
        title=f"{title}: QL-RF automated control checks as of {as_of}",
        description=(
            f"The latest evidence of every control of {pack.framework_id} evaluated at or before {as_of}, read from "
            "the append-only QL-RF lake. Each observation is one hash-chained evidence row."
        ),
        start=times[0],
        end=times[-1],
        props=_props([("framework-id", pack.framework_id), ("as-of", as_of),
                      ("integrity", "broken" if any(c.integrity != "ok" for c in pack.controls) else "ok")]),
        local_definitions=LocalDefinitions1(
            components=[SystemComponent(
                uuid=tool_uuid, type="software", title="QL-RF",
                description="QL-RF compliance evaluation: catalog checks over the DuckDB warehouse built from the lake.",
                status=Status(state="operational"),
            )],
            inventory_items=[
                InventoryItem(
                    uuid=asset_uuids[a], description=f"Asset {a}",
                    props=_props([("asset-id", a), ("site-id", sites.get(a))]),
                )
                for a in assets
            ] or None,
        ),
        reviewed_controls=ReviewedControls(
            control_selections=[ControlSelections(
                include_controls=[SelectControlById(control_id=token(c.control_id)) for c in pack.controls]
            )],
        ),
        observations=observations or None,
        findings=findings or None,
    )
    return AssessmentResults(
        uuid=document_uuid,
        metadata=Metadata(
            title=f"QL-RF evidence pack: {title} as of {as_of}",
            last_modified=times[-1],
            version=pack.framework.get("version") or "1",
            oscal_version=OSCAL_VERSION,
            props=_props([("framework-id", pack.framework_id), ("as-of", as_of)]),
        ),
        import_ap=ImportAp(
            href=f"urn:qlrf:compliance-catalog:{pack.framework_id}",
            remarks=(
                "No separate assessment plan: the plan is the QL-RF compliance catalog (frameworks, controls, "
                f"checks) in force at {as_of}" + (f", lake file {catalog_file}." if catalog_file else ".")
            ),
        ),
        results=[result],
    )


def assessment_results_json(pack: "Pack") -> bytes:
    """Pretty OSCAL JSON (wrapped in `assessment-results`), one trailing newline."""
    return assessment_results(pack).oscal_serialize_json_bytes(pretty=True) + b"\n"
