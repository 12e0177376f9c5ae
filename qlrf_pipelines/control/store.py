"""The control store: remediation tasks, their plan versions, human decisions and the audit log.

Plans are proposed by the plan job, decided on by people through the CLI and run by the execute
job: separate processes, so every state change is one database transaction, and every change that
matters to an auditor appends to the hash-chained audit log in that same transaction. Write
transactions are serialised (chain-head row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite): the
store holds human decisions, not telemetry, so simplicity beats write throughput here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from qlrf_pipelines.control import audit, queries, rules
from qlrf_pipelines.control.db import BEGIN_OPTION, make_engine, migrate, resolve_url
from qlrf_pipelines.control.errors import (
    ApprovalRefused,
    ExecutionRefused,
    InvalidTransition,
    PermissionDenied,
    PlanMismatch,
    TaskNotFound,
)
from qlrf_pipelines.control.rbac import Permission, Rbac
from qlrf_pipelines.control.tables import (
    STATUSES,
    approvals,
    audit_chain_head,
    task_actions,
    task_plans,
    tasks,
    tool_invocations,
)
from qlrf_pipelines.control.views import ApprovalView, PlanVersionView, TaskView
from qlrf_pipelines.planning.plan import Plan, canonical_json, plan_hash_of
from qlrf_pipelines.policy.verdicts import Verdict

if TYPE_CHECKING:
    from qlrf_pipelines.compliance.waivers import Waiver

DEFAULT_APPROVAL_TTL = timedelta(hours=72)
MODIFIABLE = ("pending_approval", "policy_denied", "approved")
FINAL = ("succeeded", "failed", "rolled_back")
ACTION_KEY = ("task_id", "plan_hash", "phase", "asset_id", "action")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime | None) -> datetime:
    """`now` arguments: None is the clock; a naive datetime is taken as UTC."""
    if moment is None:
        return _utcnow()
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _verdict_list(verdicts: Iterable[Verdict | dict]) -> list[Verdict]:
    result = [v if isinstance(v, Verdict) else Verdict(**v) for v in verdicts]
    if not result:
        raise ValueError("a plan must be validated before it is stored: the verdict list is empty")
    return result


def _policy_version(verdicts: list[Verdict]) -> str:
    versions = sorted({v.policy_version for v in verdicts if v.policy_version != "builtin"})
    return ",".join(versions) or "builtin"


def _verdict_summary(version: int, digest: str, verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        "plan_version": version,
        "plan_hash": digest,
        "valid": all(v.allowed for v in verdicts),
        "policy_version": _policy_version(verdicts),
        "checked": len(verdicts),
        "denied": [{"stage": v.stage, "rule": v.rule, "message": v.message} for v in verdicts if not v.allowed],
    }


class ControlStore:
    """Tasks, plans, approvals, the action journal and the audit log over SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, url: str | None = None, home: Path | None = None) -> "ControlStore":
        """Open the store at `url`, else QLRF_CONTROL_URL, else SQLite at <home or QLRF_HOME>/control.sqlite,
        upgrading its schema to the newest migration first."""
        engine = make_engine(resolve_url(url, home))
        try:
            migrate(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> "ControlStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The store's URL with any password masked (safe for logs and run metadata)."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _write(self, lock: bool = True) -> Iterator[Connection]:
        """One write transaction; with `lock`, serialised against every other locking writer."""
        with self._engine.connect() as conn:
            conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                if lock:
                    head = select(audit_chain_head.c.id).where(audit_chain_head.c.id == 1)
                    conn.execute(head.with_for_update()).one()
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A consistent snapshot across the several queries that build a view."""
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @staticmethod
    def _require_view(conn: Connection, task_id: str) -> TaskView:
        view = queries.load_view(conn, task_id)
        if view is None:
            raise TaskNotFound(task_id)
        return view

    @staticmethod
    def _insert_plan(
        conn: Connection, task_id: str, version: int, plan: Plan, verdicts: list[Verdict], by: str, at: datetime
    ) -> str:
        text = plan.canonical_json()
        digest = plan_hash_of(text)
        conn.execute(
            task_plans.insert().values(
                task_id=task_id,
                version=version,
                plan_json=text,
                plan_hash=digest,
                snapshot_key=plan.evidence.snapshot_key,
                created_by=by,
                created_at=at,
                verdicts_json=canonical_json([v.to_dict() for v in verdicts]),
                policy_version=_policy_version(verdicts),
                valid=all(v.allowed for v in verdicts),
            )
        )
        return digest

    @staticmethod
    def _set(conn: Connection, task_id: str, **values: Any) -> None:
        conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(updated_at=_utcnow(), **values))

    @staticmethod
    def _revoke(conn: Connection, task: TaskView, at: datetime, why: str) -> list[int]:
        ids = [a.approval_id for a in task.approvals if a.decision == "approved" and not a.revoked]
        if ids:
            conn.execute(
                update(approvals)
                .where(approvals.c.approval_id.in_(ids))
                .values(revoked=True, revoked_at=at, revoked_reason=why)
            )
        return ids

    # ----------------------------------------------------------------- tasks and plans
    def create_task(
        self,
        plan: Plan,
        verdicts: list[Verdict],
        requested_by: str,
        dedupe_key: str | None = None,
        source_run_id: str | None = None,
    ) -> TaskView:
        """Store a validated plan as a new task awaiting a decision.

        Idempotent by `dedupe_key`: a sensor that fires twice for the same drift gets the task it
        already created back (whatever its status) instead of a second task.
        Status is pending_approval if every verdict allowed the plan, else policy_denied.
        """
        verdicts = _verdict_list(verdicts)
        valid = all(v.allowed for v in verdicts)
        now = _utcnow()
        with self._write() as conn:
            if dedupe_key is not None:
                existing = conn.execute(select(tasks.c.task_id).where(tasks.c.dedupe_key == dedupe_key)).scalar()
                if existing is not None:
                    return self._require_view(conn, existing)
            number = (conn.execute(select(func.max(tasks.c.number))).scalar() or 0) + 1
            task_id = f"T-{number:06d}"
            conn.execute(
                tasks.insert().values(
                    task_id=task_id,
                    number=number,
                    title=plan.change,
                    status="pending_approval" if valid else "policy_denied",
                    requested_by=requested_by,
                    created_at=now,
                    updated_at=now,
                    site_id=plan.site_id,
                    environment=plan.environment,
                    family=plan.family,
                    risk=plan.task.risk,
                    dedupe_key=dedupe_key,
                    source_run_id=source_run_id,
                    current_version=1,
                )
            )
            digest = self._insert_plan(conn, task_id, 1, plan, verdicts, requested_by, now)
            created = {
                "title": plan.change,
                "site_id": plan.site_id,
                "environment": plan.environment,
                "family": plan.family,
                "risk": plan.task.risk,
                "plan_version": 1,
                "plan_hash": digest,
                "snapshot_key": plan.evidence.snapshot_key,
                "dedupe_key": dedupe_key,
                "source_run_id": source_run_id,
            }
            audit.append_event(conn, requested_by, "created", task_id, created)
            audit.append_event(conn, "policy", "validated", task_id, _verdict_summary(1, digest, verdicts))
            return self._require_view(conn, task_id)

    def get_task(self, task_id: str) -> TaskView:
        """The task with its current plan and all decisions; raises TaskNotFound."""
        with self._read() as conn:
            return self._require_view(conn, task_id)

    def list_tasks(self, status: str | None = None) -> list[TaskView]:
        """Every task (oldest first), or those in one status."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (known: {', '.join(STATUSES)})")
        with self._read() as conn:
            return queries.load_views(conn, None if status is None else tasks.c.status == status)

    def plan_history(self, task_id: str) -> list[PlanVersionView]:
        """Every plan version of a task, oldest first: what changed, who changed it, how it validated."""
        with self._read() as conn:
            self._require_view(conn, task_id)
            return queries.plan_versions(conn, task_id)

    def modify_plan(self, task_id: str, plan: Plan, verdicts: list[Verdict], user: str, rbac: Rbac) -> TaskView:
        """Store an edited plan (validated by the caller) as the task's next version.

        Operators (EXECUTE_AI_TASKS) edit plans. Any approval is revoked, because an approval binds
        one exact plan; the editor becomes the plan's last editor and so may not approve it.
        Allowed while pending_approval, policy_denied or approved. Refusals raise PermissionDenied,
        TaskNotFound, InvalidTransition or PlanMismatch and are audited as `modify_refused`.
        """
        verdicts = _verdict_list(verdicts)
        valid = all(v.allowed for v in verdicts)
        now = _utcnow()
        error: Exception | None = None
        with self._write() as conn:
            task = queries.load_view(conn, task_id)
            if not rbac.has(user, Permission.EXECUTE_AI_TASKS):
                roles = ", ".join(rbac.user_roles.get(user, ())) or "none"
                error = PermissionDenied(user, Permission.EXECUTE_AI_TASKS.value, f"roles held: {roles}")
            elif task is None:
                error = TaskNotFound(task_id)
            elif task.status not in MODIFIABLE:
                error = InvalidTransition(
                    f"task {task_id} is {task.status}; plans can be modified while {', '.join(MODIFIABLE)}"
                )
            elif (plan.site_id, plan.environment, plan.family) != (task.site_id, task.environment, task.family):
                error = PlanMismatch(
                    f"task {task_id} is about {task.family} at {task.site_id} ({task.environment}); the new plan "
                    f"is about {plan.family} at {plan.site_id} ({plan.environment}): create a new task"
                )
            if error is not None:
                audit.append_event(conn, user, "modify_refused", task_id, {"reason": str(error)})
            else:
                assert task is not None
                version = task.plan_version + 1
                digest = self._insert_plan(conn, task_id, version, plan, verdicts, user, now)
                revoked = self._revoke(conn, task, now, f"plan modified to version {version} by {user}")
                status = "pending_approval" if valid else "policy_denied"
                self._set(
                    conn, task_id, current_version=version, status=status, title=plan.change, risk=plan.task.risk
                )
                modified = {
                    "from_version": task.plan_version,
                    "to_version": version,
                    "from_hash": task.plan_hash,
                    "plan_hash": digest,
                    "revoked_approvals": revoked,
                }
                audit.append_event(conn, user, "modified", task_id, modified)
                audit.append_event(conn, "policy", "validated", task_id, _verdict_summary(version, digest, verdicts))
                view = self._require_view(conn, task_id)
        if error is not None:
            raise error
        return view

    # ----------------------------------------------------------------- decisions
    def approve(
        self,
        task_id: str,
        user: str,
        reason: str,
        rbac: Rbac,
        now: datetime | None = None,
        ttl: timedelta = DEFAULT_APPROVAL_TTL,
    ) -> ApprovalView:
        """Approve the current plan version: binds its version, hash and snapshot key; expires at now+ttl.

        Refused (ApprovalRefused, audited as approval_refused) unless `user` holds
        APPROVE_AI_TASKS, neither requested the task nor edited its current plan, and the task is
        pending_approval with a plan that passed validation and still matches its stored hash.
        """
        return self._decide("approve", task_id, user, reason, rbac, _aware(now), ttl)

    def reject(self, task_id: str, user: str, reason: str, rbac: Rbac, now: datetime | None = None) -> ApprovalView:
        """Reject the task (final). Needs APPROVE_AI_TASKS and a reason; revokes any approval."""
        return self._decide("reject", task_id, user, reason, rbac, _aware(now), None)

    def _decide(
        self, decision: str, task_id: str, user: str, reason: str, rbac: Rbac, now: datetime, ttl: timedelta | None
    ) -> ApprovalView:
        with self._write() as conn:
            task = queries.load_view(conn, task_id)
            problem = rules.decision_problem(task, task_id, user, rbac, decision)
            if problem is None and decision == "reject" and not reason.strip():
                problem = "a rejection needs a reason"
            if problem is not None:
                details = {"decision": decision, "reason": problem, "user_reason": reason}
                audit.append_event(conn, user, "approval_refused", task_id, details)
            else:
                assert task is not None
                result = self._record_decision(conn, task, decision, user, reason, now, ttl)
        if problem is not None:
            raise ApprovalRefused(problem)
        return result

    def _record_decision(
        self,
        conn: Connection,
        task: TaskView,
        decision: str,
        user: str,
        reason: str,
        now: datetime,
        ttl: timedelta | None,
    ) -> ApprovalView:
        outcome = "approved" if decision == "approve" else "rejected"
        expires_at = now + ttl if ttl is not None else None
        inserted = conn.execute(
            approvals.insert().values(
                task_id=task.task_id,
                plan_version=task.plan_version,
                plan_hash=task.plan_hash,
                snapshot_key=task.snapshot_key,
                decision=outcome,
                decided_by=user,
                reason=reason,
                decided_at=now,
                expires_at=expires_at,
                revoked=False,
            )
        )
        approval_id = inserted.inserted_primary_key[0]
        revoked = self._revoke(conn, task, now, f"task rejected by {user}") if decision == "reject" else []
        self._set(conn, task.task_id, status=outcome)
        details = {
            "approval_id": approval_id,
            "plan_version": task.plan_version,
            "plan_hash": task.plan_hash,
            "snapshot_key": task.snapshot_key,
            "reason": reason,
            "decided_at": now,
            "expires_at": expires_at,
            "revoked_approvals": revoked,
        }
        audit.append_event(conn, user, outcome, task.task_id, details)
        row = conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()
        return ApprovalView(**dict(row._mapping))

    def authorize_execution(self, task_id: str, rbac: Rbac, now: datetime | None = None) -> Plan:
        """Re-check an approved task right before its first action and return the plan to run.

        Between approval and execution the plan may have been edited in the store, the approval
        may have expired or been revoked, or the approver may have lost the role. Any of these
        raises ExecutionRefused (audited as execution_refused) and leaves the status approved, so
        a person can re-approve or modify. Success is audited too (execution_authorized).
        """
        now = _aware(now)
        with self._write() as conn:
            task = queries.load_view(conn, task_id)
            problem = rules.execution_problem(task, task_id, rbac, now)
            if problem is not None:
                audit.append_event(conn, "system", "execution_refused", task_id, {"reason": problem})
            else:
                assert task is not None
                approval = task.current_approval()
                assert approval is not None
                details = {
                    "plan_version": task.plan_version,
                    "plan_hash": task.plan_hash,
                    "approval_id": approval.approval_id,
                    "approved_by": approval.decided_by,
                }
                audit.append_event(conn, "system", "execution_authorized", task_id, details)
        if problem is not None:
            raise ExecutionRefused(problem)
        return task.plan()

    def approved_tasks(self) -> list[tuple[str, str]]:
        """(task_id, plan_hash) of every approved task: what the approval sensor polls.
        Put both in the run key, so a modified and re-approved plan gets a new run."""
        current = and_(task_plans.c.task_id == tasks.c.task_id, task_plans.c.version == tasks.c.current_version)
        query = (
            select(tasks.c.task_id, task_plans.c.plan_hash)
            .join(task_plans, current)
            .where(tasks.c.status == "approved")
            .order_by(tasks.c.number)
        )
        with self._read() as conn:
            return [(r.task_id, r.plan_hash) for r in conn.execute(query)]

    # ----------------------------------------------------------------- execution state
    def mark_started(self, task_id: str, run_id: str, plan_hash: str | None = None) -> TaskView:
        """approved -> running. Only one run can claim a task: a second call raises InvalidTransition.
        Pass the authorised plan's hash to refuse a plan swapped in since authorize_execution."""
        with self._write() as conn:
            task = self._require_view(conn, task_id)
            if task.status != "approved":
                raise InvalidTransition(f"task {task_id} is {task.status}; only an approved task can start")
            if plan_hash is not None and plan_hash != task.plan_hash:
                raise InvalidTransition(f"task {task_id}: plan changed since it was authorised ({plan_hash})")
            self._set(conn, task_id, status="running", run_id=run_id, started_at=_utcnow(), finished_at=None)
            details = {"run_id": run_id, "plan_version": task.plan_version, "plan_hash": task.plan_hash}
            audit.append_event(conn, "system", "started", task_id, details)
            return self._require_view(conn, task_id)

    def record_phase(self, task_id: str, phase: str, passed: bool, details: dict[str, Any]) -> None:
        """Audit the outcome of one rollout phase (canary, wave-N) of a running task."""
        with self._write() as conn:
            task = self._require_view(conn, task_id)
            if task.status != "running":
                raise InvalidTransition(f"task {task_id} is {task.status}; phases are recorded while running")
            event = {"phase": phase, "passed": passed, "run_id": task.run_id, "details": details}
            audit.append_event(conn, "system", "phase_done", task_id, event)

    def mark_rolled_back(self, task_id: str, details: dict[str, Any]) -> TaskView:
        """running -> rolled_back, with what was restored; end the run with mark_finished afterwards."""
        with self._write() as conn:
            task = self._require_view(conn, task_id)
            if task.status != "running":
                raise InvalidTransition(f"task {task_id} is {task.status}; only a running task can roll back")
            self._set(conn, task_id, status="rolled_back")
            audit.append_event(conn, "system", "rolled_back", task_id, {"run_id": task.run_id, "details": details})
            return self._require_view(conn, task_id)

    def mark_finished(self, task_id: str, status: str) -> TaskView:
        """End a run: running -> succeeded | failed | rolled_back, or rolled_back -> rolled_back | failed.
        Repeating the same final status is a no-op (a failure hook may call it after the op did)."""
        if status not in FINAL:
            raise ValueError(f"final status must be one of {', '.join(FINAL)}, not {status!r}")
        with self._write() as conn:
            task = self._require_view(conn, task_id)
            if task.finished_at is not None and task.status == status:
                return task
            after_rollback = task.status == "rolled_back" and status in ("rolled_back", "failed")
            allowed = task.status == "running" or after_rollback
            if not allowed or task.finished_at is not None:
                raise InvalidTransition(f"task {task_id} is {task.status}; it cannot finish as {status}")
            now = _utcnow()
            self._set(conn, task_id, status=status, finished_at=now)
            duration = (now - task.started_at).total_seconds() if task.started_at else None
            details = {"status": status, "run_id": task.run_id, "duration_s": duration}
            audit.append_event(conn, "system", "finished", task_id, details)
            return self._require_view(conn, task_id)

    # ----------------------------------------------------------------- action journal
    def record_action(
        self,
        task_id: str,
        plan_hash: str,
        phase: str,
        asset_id: str,
        action: str,
        dry_run: bool,
        status: str,
        details: dict[str, Any],
    ) -> bool:
        """Journal one action on one asset. Returns False, changing nothing, when this step
        (task, plan hash, phase, asset, action) is already journalled, so a retried run skips it.
        Record once the outcome is known: a journalled step is never redone for the same plan."""
        row = {
            "task_id": task_id,
            "plan_hash": plan_hash,
            "phase": phase,
            "asset_id": asset_id,
            "action": action,
            "dry_run": dry_run,
            "status": status,
            "details_json": canonical_json(audit.jsonable(details)),
            "recorded_at": _utcnow(),
        }
        with self._write() as conn:
            if conn.execute(select(tasks.c.task_id).where(tasks.c.task_id == task_id)).scalar() is None:
                raise TaskNotFound(task_id)
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(task_actions).values(**row).on_conflict_do_nothing(index_elements=ACTION_KEY)
            inserted = conn.execute(statement).rowcount == 1
            if inserted:
                event = {k: row[k] for k in ACTION_KEY[1:]}
                event |= {"dry_run": dry_run, "status": status, "details": details}
                audit.append_event(conn, "system", "action_recorded", task_id, event)
        return inserted

    def actions(self, task_id: str) -> list[dict[str, Any]]:
        """The journal of a task in the order recorded (details parsed, datetimes aware UTC)."""
        query = select(task_actions).where(task_actions.c.task_id == task_id).order_by(task_actions.c.action_id)
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for data in rows:
            data["details"] = json.loads(data.pop("details_json"))
            data["dry_run"] = bool(data["dry_run"])
        return rows

    def record_tool_invocation(
        self,
        task_id: str | None,
        tool: str,
        arguments: dict[str, Any],
        result_size: int,
        duration_ms: int,
        step: int,
        run_id: str | None = None,
    ) -> None:
        """Keep what a planner asked its tools (arguments, result size, time): how a plan was made."""
        with self._write(lock=False) as conn:
            conn.execute(
                tool_invocations.insert().values(
                    task_id=task_id,
                    run_id=run_id,
                    tool=tool,
                    arguments_json=canonical_json(audit.jsonable(arguments)),
                    result_size=result_size,
                    duration_ms=duration_ms,
                    step=step,
                    invoked_at=_utcnow(),
                )
            )

    def tool_invocations(self, task_id: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """The tool calls behind a task (or a planning run), in the order they were made."""
        query = select(tool_invocations).order_by(tool_invocations.c.invocation_id)
        if task_id is not None:
            query = query.where(tool_invocations.c.task_id == task_id)
        if run_id is not None:
            query = query.where(tool_invocations.c.run_id == run_id)
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["arguments"] = json.loads(row.pop("arguments_json"))
        return rows

    # ----------------------------------------------------------------- audit and export
    def audit(
        self, actor: str, action: str, task_id: str | None = None, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Append an event that is not a task transition (a drill, a waiver, an export...)."""
        with self._write() as conn:
            return audit.append_event(conn, actor, action, task_id, details)

    def audit_events(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Events in chain order: seq, at, actor, action, task_id, details, prev_hash, hash.
        Reading them needs VIEW_AUDIT_LOGS; the caller (the CLI) checks it."""
        with self._read() as conn:
            return audit.read_events(conn, task_id)

    def verify_audit(self) -> audit.AuditVerification:
        """Recompute the whole chain; problems name the seq where an event was edited, deleted or moved."""
        with self._read() as conn:
            return audit.verify(conn)

    def export_rows(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-able rows for the lake, and so the warehouse: ai_tasks (current status and plan hash),
        ai_task_plans (every version, with plan_json), ai_tool_invocations, image_lineage_links,
        image_promotions and compliance_waivers. Timestamps are ISO text."""
        from qlrf_pipelines.compliance import waivers
        from qlrf_pipelines.control import image_registry

        with self._read() as conn:
            return queries.export_rows(conn) | image_registry.export_rows(conn) | waivers.export_rows(conn)

    # ----------------------------------------------------------------- compliance waivers
    def waivers_in_force(self, on: date | datetime) -> list[Waiver]:
        """The compliance waivers (compliance.waivers.Waiver) that apply on day `on` (from their
        creation day through their expiry date, unless revoked by then) or at moment `on`."""
        from qlrf_pipelines.compliance import waivers

        return waivers.waivers_in_force(self, on)
