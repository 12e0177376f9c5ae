"""The hash-chained audit log.

Every event's hash covers its own fields and the previous event's hash, so editing, deleting or
reordering an event breaks the chain at a point verify() names. Appends read and update a one-row
chain head inside the writer's transaction (locked FOR UPDATE on PostgreSQL; SQLite write
transactions are BEGIN IMMEDIATE), so concurrent writers can never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, update

from qlrf_pipelines.control.tables import audit_chain_head, audit_events
from qlrf_pipelines.planning.plan import canonical_json

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)


def iso(moment: datetime) -> str:
    """The one text form of a timestamp in the audit log (UTC, microseconds, Z)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Path, Enum)):
        return str(value.value if isinstance(value, Enum) else value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def jsonable(data: Any) -> Any:
    """Plain JSON types only, so what is hashed is exactly what is read back."""
    return json.loads(json.dumps(data, default=_default))


def event_hash(seq: int, at: str, actor: str, action: str, task_id: str | None, details: Any, prev_hash: str) -> str:
    payload = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "task_id": task_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def append_event(
    conn: Connection,
    actor: str,
    action: str,
    task_id: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Append one event in the caller's (write) transaction and return it."""
    head = conn.execute(
        select(audit_chain_head.c.last_seq, audit_chain_head.c.last_hash)
        .where(audit_chain_head.c.id == 1)
        .with_for_update()
    ).one()
    details = jsonable(details or {})
    seq = head.last_seq + 1
    stamp = iso(at or datetime.now(timezone.utc))
    digest = event_hash(seq, stamp, actor, action, task_id, details, head.last_hash)
    row = {
        "seq": seq,
        "at": stamp,
        "actor": actor,
        "action": action,
        "task_id": task_id,
        "details_json": canonical_json(details),
        "prev_hash": head.last_hash,
        "hash": digest,
    }
    conn.execute(insert(audit_events).values(**row))
    conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1).values(last_seq=seq, last_hash=digest))
    return event_dict(row)


def event_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    details_json = data.pop("details_json")
    try:
        data["details"] = json.loads(details_json)
    except ValueError:
        data["details"] = details_json  # a damaged row is still shown; verify() reports it
    return data


def read_events(conn: Connection, task_id: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_events).order_by(audit_events.c.seq)
    if task_id is not None:
        query = query.where(audit_events.c.task_id == task_id)
    return [event_dict(row) for row in conn.execute(query)]


def verify(conn: Connection) -> AuditVerification:
    """Walk the chain from the first event and name every event where it breaks."""
    problems: list[str] = []
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    last_seq = 0
    for row in conn.execute(select(audit_events).order_by(audit_events.c.seq)):
        checked += 1
        seq = row.seq
        if seq != expected_seq:
            missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
            problems.append(f"seq {seq}: gap in sequence after seq {expected_seq - 1}: {missing} missing (deleted)")
        if row.prev_hash != prev_hash:
            problems.append(
                f"seq {seq}: prev_hash does not link to the event before it (seq {last_seq}): "
                "an event was deleted, inserted or reordered here"
            )
        try:
            details = json.loads(row.details_json)
        except ValueError:
            problems.append(f"seq {seq}: details are not valid JSON (event edited)")
        else:
            computed = event_hash(seq, row.at, row.actor, row.action, row.task_id, details, row.prev_hash)
            if computed != row.hash:
                problems.append(
                    f"seq {seq}: hash mismatch (event edited): stored {row.hash[:12]}…, computed {computed[:12]}…"
                )
        prev_hash, expected_seq, last_seq = row.hash, seq + 1, seq
    head = conn.execute(select(audit_chain_head).where(audit_chain_head.c.id == 1)).one_or_none()
    if head is None:
        problems.append("chain head row is missing")
    elif head.last_seq > last_seq:
        problems.append(
            f"chain head records seq {head.last_seq} as the last event but the log ends at seq {last_seq}: "
            "events at the end were deleted"
        )
    elif head.last_seq < last_seq:
        problems.append(f"seq {head.last_seq + 1}: events after the chain head (seq {head.last_seq}) were inserted")
    elif head.last_hash != prev_hash:
        problems.append(f"seq {last_seq}: hash differs from the chain head's: the last event was replaced")
    return AuditVerification(ok=not problems, checked=checked, problems=problems)
