"""Compliance waivers: a person accepted that one asset fails one control, until a date.

A waiver never turns a failure into a pass: the evaluator reports the failing asset as `waived`
and keeps the waiver id in the evidence, so an auditor sees what was accepted, by whom and why.
Adding and revoking are decisions, so they live in the control store: each is RBAC-checked
(MANAGE_WAIVERS) and appended to the audit hash chain in the same transaction as the change, and
every refusal is audited too. Rows are never deleted, so "which waivers were in force on the audit
date" stays answerable; the whole table reaches the lake (entity `compliance_waivers`) with each
control store export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from qlrf_pipelines.control import audit
from qlrf_pipelines.control.errors import ControlError, PermissionDenied
from qlrf_pipelines.control.rbac import Permission, Rbac
from qlrf_pipelines.control.tables import compliance_waivers

if TYPE_CHECKING:
    from qlrf_pipelines.control.store import ControlStore

MIN_REASON_CHARS = 10


class WaiverRefused(ControlError, ValueError):
    """A waiver was not added or revoked; the message says why (the refusal is in the audit log)."""


class WaiverNotFound(WaiverRefused, LookupError):
    def __init__(self, waiver_id: str) -> None:
        super().__init__(f"no waiver {waiver_id!r} in the control store")
        self.waiver_id = waiver_id


@dataclass(frozen=True)
class Waiver:
    waiver_id: str
    control_id: str
    framework_id: str | None  # None: this control id in every framework
    asset_id: str
    reason: str
    created_by: str
    created_at: datetime
    expires_on: date  # waived through this date (UTC), inclusive
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def in_force(self, on: date | datetime) -> bool:
        """In force on a day (from its creation day through expires_on, unless revoked on or
        before that day) or at a moment (created before it, not yet revoked, not yet expired)."""
        if isinstance(on, datetime):
            moment = _aware(on)
            return (
                self.created_at <= moment
                and moment.date() <= self.expires_on
                and (self.revoked_at is None or self.revoked_at > moment)
            )
        return (
            self.created_at.date() <= on <= self.expires_on
            and (self.revoked_at is None or self.revoked_at.date() > on)
        )

    def applies_to(self, framework_id: str, control_id: str, asset_id: str) -> bool:
        return (
            self.control_id == control_id
            and self.asset_id == asset_id
            and (self.framework_id is None or self.framework_id == framework_id)
        )

    def state(self, on: date) -> str:
        """active | expired | revoked | pending (created after `on`), for listings."""
        if self.revoked_at is not None and self.revoked_at.date() <= on:
            return "revoked"
        if self.expires_on < on:
            return "expired"
        return "active" if self.created_at.date() <= on else "pending"

    def to_row(self) -> dict[str, Any]:
        """JSON-able (timestamps ISO-8601 UTC as in the audit log, the date as YYYY-MM-DD)."""
        return audit.jsonable(asdict(self))


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _waiver(row: Any) -> Waiver:
    data = dict(row._mapping)
    expires = data["expires_on"]
    if isinstance(expires, str):  # a SQLite row read without the Date type's help
        data["expires_on"] = date.fromisoformat(expires)
    return Waiver(**data)


def resolve_control(
    known: Mapping[str, Collection[str]], control_id: str, framework_id: str | None
) -> tuple[str, str | None]:
    """The catalog's spelling of (control id, framework id); refuses ids the catalog does not know.

    `known` maps framework id -> its control ids (see catalog_controls). Matching ignores case, so
    `cm-2` finds NIST's `CM-2`; with no framework the control id must exist in at least one.
    """
    frameworks = {f.lower(): f for f in known}
    if framework_id is not None:
        framework = frameworks.get(framework_id.strip().lower())
        if framework is None:
            raise WaiverRefused(
                f"unknown framework {framework_id!r} (known: {', '.join(sorted(known)) or 'none'})"
            )
        searched = {framework: known[framework]}
    else:
        framework, searched = None, dict(known)
    wanted = control_id.strip().lower()
    for fw in sorted(searched):
        for control in searched[fw]:
            if control.lower() == wanted:
                return control, framework
    where = f"framework {framework}" if framework else "any framework of the compliance catalog"
    raise WaiverRefused(f"unknown control {control_id!r}: not a control of {where}")


def catalog_controls(catalog: Any) -> dict[str, frozenset[str]]:
    """framework id -> control ids, from the compliance catalog (compliance.catalog.load_catalog())."""
    return {fid: frozenset(fw.controls) for fid, fw in catalog.frameworks.items()}


def _next_id(conn: Connection) -> str:
    last = conn.execute(select(func.max(compliance_waivers.c.waiver_id))).scalar()
    number = int(last.removeprefix("W-")) + 1 if last else 1
    return f"W-{number:06d}"


def _refuse(store: "ControlStore", user: str, what: str, details: dict[str, Any], error: Exception) -> Exception:
    """Audit a refusal (its own transaction) and hand the error back for the caller to raise."""
    store.audit(user, f"{what}_refused", None, details | {"reason_refused": str(error)})
    return error


def add(
    store: "ControlStore",
    known: Mapping[str, Collection[str]],
    control_id: str,
    asset_ids: Iterable[str],
    until: date,
    user: str,
    reason: str,
    rbac: Rbac,
    framework_id: str | None = None,
    now: datetime | None = None,
) -> list[Waiver]:
    """Waive `control_id` for each asset through `until` (inclusive); one waiver per asset.

    Refused (WaiverRefused / PermissionDenied, audited as `waiver_refused`) unless `user` holds
    MANAGE_WAIVERS, the control (and framework, if given) is in the catalog `known`, `until` is
    not in the past, the reason says why in at least MIN_REASON_CHARS characters and at least
    one asset id is given. All waivers of one call are added in one transaction, or none.
    """
    moment = _aware(now or datetime.now(timezone.utc))
    assets = list(dict.fromkeys(a.strip() for a in asset_ids if a and a.strip()))
    asked = {
        "control_id": control_id, "framework_id": framework_id, "asset_ids": assets,
        "expires_on": until.isoformat(), "reason": reason,
    }
    try:
        rbac.require(user, Permission.MANAGE_WAIVERS)
        control, framework = resolve_control(known, control_id, framework_id)
        if not assets:
            raise WaiverRefused("a waiver needs at least one asset id (--asset)")
        if until < moment.date():
            raise WaiverRefused(f"expiry {until.isoformat()} is in the past (today is {moment.date().isoformat()} UTC)")
        if len(reason.strip()) < MIN_REASON_CHARS:
            raise WaiverRefused(
                f"a waiver needs a reason of at least {MIN_REASON_CHARS} characters saying why the failure is accepted"
            )
    except (WaiverRefused, PermissionDenied) as exc:
        raise _refuse(store, user, "waiver", asked, exc) from None
    added: list[Waiver] = []
    with store._write() as conn:
        for asset_id in assets:
            waiver = Waiver(
                waiver_id=_next_id(conn), control_id=control, framework_id=framework, asset_id=asset_id,
                reason=reason.strip(), created_by=user, created_at=moment, expires_on=until,
            )
            conn.execute(compliance_waivers.insert().values(**asdict(waiver)))
            details = {k: v for k, v in waiver.to_row().items() if not k.startswith("revoke")}
            audit.append_event(conn, user, "waiver_added", None, details)
            added.append(waiver)
    return added


def revoke(
    store: "ControlStore", waiver_id: str, user: str, reason: str, rbac: Rbac, now: datetime | None = None
) -> Waiver:
    """Withdraw a waiver from now on (it stays in the store, stamped with who, when and why).
    Refused (audited as `waiver_revoke_refused`) without MANAGE_WAIVERS, a reason of at least
    MIN_REASON_CHARS characters, or for an unknown or already revoked waiver."""
    moment = _aware(now or datetime.now(timezone.utc))
    asked = {"waiver_id": waiver_id, "reason": reason}
    with store._write() as conn:
        row = conn.execute(select(compliance_waivers).where(compliance_waivers.c.waiver_id == waiver_id)).first()
        error = _revoke_problem(rbac, user, waiver_id, row, reason)
        if error is not None:
            audit.append_event(conn, user, "waiver_revoke_refused", None, asked | {"reason_refused": str(error)})
        else:
            conn.execute(
                update(compliance_waivers)
                .where(compliance_waivers.c.waiver_id == waiver_id)
                .values(revoked_at=moment, revoked_by=user, revoke_reason=reason.strip())
            )
            waiver = _waiver(conn.execute(select(compliance_waivers).where(compliance_waivers.c.waiver_id == waiver_id)).one())
            audit.append_event(
                conn, user, "waiver_revoked", None,
                {"waiver_id": waiver_id, "control_id": waiver.control_id, "framework_id": waiver.framework_id,
                 "asset_id": waiver.asset_id, "reason": waiver.revoke_reason},
            )
    if error is not None:
        raise error
    return waiver


def _revoke_problem(rbac: Rbac, user: str, waiver_id: str, row: Any, reason: str) -> Exception | None:
    try:
        rbac.require(user, Permission.MANAGE_WAIVERS)
    except PermissionDenied as exc:
        return exc
    if row is None:
        return WaiverNotFound(waiver_id)
    if row.revoked_at is not None:
        return WaiverRefused(f"waiver {waiver_id} was already revoked by {row.revoked_by} at {audit.iso(row.revoked_at)}")
    if len(reason.strip()) < MIN_REASON_CHARS:
        return WaiverRefused(f"revoking needs a reason of at least {MIN_REASON_CHARS} characters")
    return None


def list_waivers(store: "ControlStore") -> list[Waiver]:
    """Every waiver ever added, revoked and expired ones included, in the order added."""
    with store._read() as conn:
        return [_waiver(r) for r in conn.execute(select(compliance_waivers).order_by(compliance_waivers.c.waiver_id))]


def waivers_in_force(store: "ControlStore", on: date | datetime) -> list[Waiver]:
    """The waivers that apply on day `on` (or at moment `on`): see Waiver.in_force."""
    return [w for w in list_waivers(store) if w.in_force(on)]


def export_rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """compliance_waivers as JSON-able rows for the lake (every waiver, in the order added)."""
    rows = conn.execute(select(compliance_waivers).order_by(compliance_waivers.c.waiver_id)).all()
    return {"compliance_waivers": [_waiver(r).to_row() for r in rows]}
