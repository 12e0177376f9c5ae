"""A runbook (standard operating procedure) for a remediation plan, as Markdown.

Pure: a function of plans and their validation verdicts, no I/O, so the same plans always give
the same document. The runbook is a draft for a person: it names the plan hash the approval binds
to, the exact `qlrf` commands of each step and what to do when a health check fails. The task id
is not known while the plan is only drafted (the plan job stores it as a task), so commands show
`<task-id>`; the runbook says how to find it from the plan hash.
"""

from __future__ import annotations

import json

from typing import Any, Mapping, Sequence

from qlrf_pipelines.planning.limits import PlanningLimits
from qlrf_pipelines.planning.plan import Phase, Plan

TASK_ID = "<task-id>"
APPROVER = "<approver>"
APPROVE_PERMISSION = "APPROVE_AI_TASKS"
APPROVAL_HOURS = 72
# A runbook stays readable at any estate size: long tables and lists are cut (the plan has them all).
MAX_TABLE_ROWS = 100
MAX_LISTED = 30
MAX_IDS_IN_COMMAND = 200

# What a person snapshots before the change, per provider (the rollback restores the image, not data).
BACKUPS: dict[str, str] = {
    "aws": "an EBS snapshot (or AMI) of each target instance",
    "azure": "a managed-disk snapshot of each target VM",
    "gcp": "a persistent-disk snapshot of each target instance",
    "vsphere": "a VM snapshot of each target VM",
    "kubernetes": "the current manifests of each target workload / node pool (kubectl get -o yaml)",
}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _more(total: int, what: str) -> list[str]:
    if total <= MAX_TABLE_ROWS:
        return []
    return ["", f"_{total - MAX_TABLE_ROWS} more {what} not listed here: the whole list is in the plan "
                f"(`qlrf tasks show {TASK_ID} --json` once stored)._"]


def _tolerance(share: float, size: int) -> str:
    if share <= 0:
        return "no failure tolerated"
    allowed = int(share * size + 1e-9)
    return f"at most {share:.0%} of the phase may fail ({allowed} of {size} asset(s))"


def phase_order(plan: Plan) -> list[Phase]:
    """Phases in the order the execute job runs them: the plan's order (the canary first in
    production; the policy denies a production plan that does not start with one)."""
    return list(plan.phases)


def verdict_dicts(verdicts: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Verdict objects or dicts as {stage, rule, allowed, message}."""
    out = []
    for v in verdicts or ():
        data = v if isinstance(v, Mapping) else v.to_dict()
        out.append({k: data.get(k) for k in ("stage", "rule", "allowed", "message")})
    return out


def sop_title(plans: Sequence[Plan]) -> str:
    if len(plans) == 1:
        return f"SOP: {plans[0].task.intent}"
    sites = sorted({p.site_id for p in plans})
    families = sorted({p.family for p in plans})
    targets = sum(len(p.targets) for p in plans)
    images = "golden image" if len(families) == 1 else "golden images"
    return (f"SOP: move {targets} assets at {', '.join(sites)} to the current {', '.join(families)} "
            f"{images} ({len(plans)} plans)")


def render_sop(
    plans: Sequence[Plan],
    verdicts: Sequence[Sequence[Any] | None] | None = None,
    *,
    limits: PlanningLimits | None = None,
) -> tuple[str, str]:
    """(title, markdown) of the runbook for `plans` (each approved and executed as its own task).

    `verdicts[i]` are the validation verdicts of `plans[i]` (Verdict objects or dicts), or None
    when the plan was not validated."""
    if not plans:
        raise ValueError("a runbook needs at least one plan")
    limits = limits or PlanningLimits()
    verdicts = list(verdicts or [None] * len(plans))
    if len(verdicts) != len(plans):
        raise ValueError("one verdict list per plan")
    checked = [verdict_dicts(v) if v is not None else None for v in verdicts]
    title = sop_title(plans)
    several = len(plans) > 1
    targets = [t for p in plans for t in p.targets]
    providers = sorted({t.provider for t in targets if t.provider})
    production = any(limits.is_production(p.environment) for p in plans)

    md: list[str] = [f"# {title}", ""]
    md += [
        "> Draft for review, generated from the warehouse by the planner tools. Nothing has been "
        "changed, stored or approved: the plan becomes a task when the plan job stores it, and only "
        f"an approval by a person holding {APPROVE_PERMISSION} lets it run.",
        "",
    ]

    # -- purpose ------------------------------------------------------------------------------
    md += ["## 1. Purpose", ""]
    for index, plan in enumerate(plans, start=1):
        label = f"Plan {index}: " if several else ""
        md.append(
            f"- {label}{plan.task.intent}. Change: {plan.change}; risk **{plan.task.risk}**; "
            f"fixes {len(plan.evidence.drift_item_ids)} open drift item(s) "
            f"(assets behind the current golden image {plan.to_image_id}). "
            f"Plan hash `{plan.plan_hash()}`."
        )
    md.append("")

    # -- scope --------------------------------------------------------------------------------
    md += ["## 2. Scope", ""]
    for index, plan in enumerate(plans, start=1):
        canary = next((p for p in plan.phases if p.kind == "canary"), None)
        md.append(
            f"- {'Plan ' + str(index) + ': ' if several else ''}site {plan.site_id} ({plan.environment}), "
            f"family {plan.family}, {len(plan.targets)} of {plan.fleet_size} in-scope asset(s) of the site "
            f"({len(plan.targets) / plan.fleet_size:.0%} of its fleet), {len(plan.phases)} phase(s)"
            + (f", canary of {len(canary.asset_ids)}" if canary else ", no canary (not production)")
            + "."
        )
    md.append("")
    rows = []
    for index, plan in enumerate(plans, start=1):
        for ph in phase_order(plan):
            for asset_id in ph.asset_ids:
                t = plan.target(asset_id)
                row = [ph.name, t.asset_id, t.name, t.site_id, t.environment, t.provider,
                       f"{t.from_image_id or 'unknown'} ({t.from_image_ref or '-'})",
                       f"{t.to_image_id} ({t.to_image_ref or 'NOT PUBLISHED'})"]
                rows.append(([str(index)] if several else []) + row)
    headers = (["plan"] if several else []) + ["phase", "asset_id", "name", "site", "environment", "provider",
                                               "from image (ref)", "to image (ref)"]
    md += _table(headers, rows[:MAX_TABLE_ROWS]) + _more(len(rows), "targets") + [""]

    # -- prerequisites --------------------------------------------------------------------------
    md += ["## 3. Prerequisites", ""]
    md.append(
        f"- **Approval**: a person holding {APPROVE_PERMISSION} who neither requested the task nor last "
        f"edited its plan approves it. The approval binds to the plan hash and the snapshot key and "
        f"expires after {APPROVAL_HOURS} h; an edited plan needs a new approval."
    )
    md.append(
        "- **Maintenance window**: agreed with the owners of "
        + ", ".join(sorted({p.site_id for p in plans}))
        + f" and long enough for {sum(len(p.phases) for p in plans)} phase(s) plus a rollback"
        + (" (production: inside the approved change window)." if production else ".")
    )
    backups = [f"{provider}: {BACKUPS.get(provider, 'a backup of each target')}" for provider in providers]
    md.append("- **Backups** taken and verified before the window: " + ("; ".join(backups) or "a backup of each target") + ".")
    md.append(
        "- **Rollback images kept**: every `from` image in the scope table stays available at its site "
        "until the change is closed (a rollback restores it)."
    )
    for index, plan in enumerate(plans, start=1):
        label = f"Plan {index}" if several else "The plan"
        unpublished = [t.asset_id for t in plan.targets if not t.to_image_ref]
        if unpublished:
            md.append(f"- **Blocker**: {label}: {plan.to_image_id} is not published at the site of "
                      f"{len(unpublished)} target(s) ({', '.join(unpublished[:5])}); publish it first.")
        if checked[index - 1] is not None:
            denied = [v for v in checked[index - 1] if not v["allowed"]]
            if denied:
                md.append(f"- **Blocker**: {label} is denied by validation; do not proceed until fixed:")
                md += [f"  - `{v['rule']}`: {v['message']}" for v in denied]
            else:
                md.append(f"- {label} passes every validation rule ({len(checked[index - 1])} verdicts: schema, "
                          "policy, safety).")
    md.append("")

    # -- pre-checks ---------------------------------------------------------------------------------
    md += ["## 4. Pre-checks (just before the window)", ""]
    md.append(
        "1. Find the task of each plan: `qlrf tasks list --status pending_approval` (the plan_hash column "
        "shows the first 12 characters of the hash); if it is missing, the plan job has not run since "
        "the last refresh: `qlrf tick --sensor drift_sensor`."
    )
    for index, plan in enumerate(plans, start=1):
        md.append(
            f"   - {'Plan ' + str(index) + ': ' if several else ''}plan hash `{plan.plan_hash()[:12]}` -> "
            f"`qlrf tasks show {TASK_ID}`: the hash matches `{plan.plan_hash()}` and every verdict shows `allow`."
        )
    md.append(
        "2. Inventory is fresh and no blocking compliance check fails (planning and execution refuse "
        "otherwise): `qlrf tools call compliance_status`."
    )
    md.append("3. The targets are running and still on their `from` image:")
    for plan in dict.fromkeys((p.site_id, p.family) for p in plans):
        md.append(
            f"   - `qlrf tools call query_assets "
            f"--args '{{\"site_id\": \"{plan[0]}\", \"image_family\": \"{plan[1]}\"}}'`"
        )
    if len(targets) <= MAX_IDS_IN_COMMAND:
        ids = ", ".join(f'"{t.asset_id}"' for t in targets)
        md.append("4. Blast radius within the policy caps: "
                  f"`qlrf tools call estimate_blast_radius --args '{{\"asset_ids\": [{ids}]}}'`.")
    else:  # too many ids for a command line: the same selection by site and family
        md.append("4. Blast radius within the policy caps, per site and family:")
        for site_id, family in dict.fromkeys((p.site_id, p.family) for p in plans):
            radius = json.dumps({"site_id": site_id, "family": family})
            md.append(f"   - `qlrf tools call estimate_blast_radius --args '{radius}'`")
    md.append("5. The backups of section 3 exist and the on-call engineer and the site owners are reachable.")
    md.append("")

    # -- steps ------------------------------------------------------------------------------------
    md += ["## 5. Procedure", ""]
    step = 0
    for index, plan in enumerate(plans, start=1):
        prefix = f"Plan {index}, " if several else ""
        step += 1
        md += [f"### Step {step}: {prefix}approve", ""]
        md.append(f"1. Review: `qlrf tasks show {TASK_ID}` (plan hash `{plan.plan_hash()[:12]}`).")
        md.append(
            f"2. Approve: `qlrf tasks approve {TASK_ID} --user {APPROVER} --reason \"<change ticket>: {plan.change}\"` "
            f"(or reject: `qlrf tasks reject {TASK_ID} --user {APPROVER} --reason \"...\"`)."
        )
        md.append(
            "3. Execution starts by itself: the `approval_sensor` launches `execute_remediation_job` for the "
            "approved task within 30 s while the Dagster daemon runs (`qlrf dev`); without a daemon run "
            "`qlrf tick --sensor approval_sensor`. The job re-checks the plan hash, approval, expiry and "
            "policy before any action, then runs one phase after the other and stops at the first failed "
            "health check. It is a dry run unless the site has `execution_enabled`."
        )
        md.append("")
        for phase in phase_order(plan):
            step += 1
            names = ", ".join(plan.target(a).name for a in phase.asset_ids[:MAX_LISTED]) + (
                f" and {len(phase.asset_ids) - MAX_LISTED} more" if len(phase.asset_ids) > MAX_LISTED else "")
            md += [f"### Step {step}: {prefix}phase `{phase.name}` ({phase.kind}, {len(phase.asset_ids)} asset(s))", ""]
            if phase.kind == "canary":
                md.append("The canary goes first: a few assets show whether the new image works before the rest move.")
            md.append(f"- Assets: {names}.")
            md.append(f"- Change: each asset moves to {plan.to_image_id}.")
            md.append("- Health checks (the job proceeds to the next phase only when they pass):")
            for check in phase.health_checks:
                md.append(f"  - `{check.kind}`: {check.description}; "
                          f"{_tolerance(check.max_failed_share, len(phase.asset_ids))}.")
            md.append(f"- Watch: `qlrf tasks show {TASK_ID}` lists one action line per asset of `{phase.name}`.")
            md.append("- Go / no-go: on a failed health check the job rolls back by itself (section 6); "
                      "do not start later phases by hand.")
            md.append("")
        step += 1
        md += [f"### Step {step}: {prefix}verify", ""]
        md.append(f"- After the next refresh (`qlrf run`) the drift items of the plan are closed: "
                  f"`qlrf drift --site {plan.site_id} --type image`; `qlrf tasks show {TASK_ID}` shows the task succeeded.")
        md.append("")

    # -- rollback -----------------------------------------------------------------------------------
    md += ["## 6. Rollback", ""]
    for index, plan in enumerate(plans, start=1):
        if several:
            md += [f"Plan {index} ({plan.site_id}, {plan.family}):", ""]
        md.append("- When: " + "; ".join(plan.rollback.criteria) + ".")
        md.append("- What the job does (latest phase first):")
        md += [f"  {n}. {s.description}" for n, s in enumerate(plan.rollback.steps, start=1)]
        restore = []
        for phase in reversed(phase_order(plan)):
            for asset_id in phase.asset_ids:
                t = plan.target(asset_id)
                restore.append([phase.name, t.asset_id, t.name, f"{t.from_image_id or 'unknown'} ({t.from_image_ref or '-'})"])
        md += ["- Restore table (newest phase first):", ""]
        md += _table(["phase", "asset_id", "name", "restore image (ref)"], restore[:MAX_TABLE_ROWS])
        md += _more(len(restore), "assets") + [""]
    md.append(
        "- By hand (the job could not roll back): restore each asset of the started phases to its image "
        "above, newest phase first, and check the assets run again; "
        "`qlrf tools call generate_rollback_plan --args '{\"asset_ids\": [...]}'` shows what each runs now."
    )
    md.append("- The task then ends `rolled_back` (or `failed` when the rollback could not finish): record why "
              "and open an incident; a new attempt needs a new plan and a new approval.")
    md.append("")

    # -- communication ---------------------------------------------------------------------------------
    md += ["## 7. Communication", ""]
    md += [
        "- Before: announce the window, the scope (sites, asset count, risk) and the rollback plan to the site "
        "owners and the on-call engineer; link the task and the plan hash.",
        "- During: post after the canary (go / no-go) and after each wave.",
        "- After: post the outcome (task status, assets changed, drift closed) and close the change ticket.",
        "- On rollback: tell the same audience at once, with the failed phase and health check; follow "
        "the incident process.",
        "",
    ]

    # -- evidence ---------------------------------------------------------------------------------------
    md += ["## 8. Evidence to keep", ""]
    md += [
        f"- Task id, plan hash and plan JSON: `qlrf tasks show {TASK_ID} --json` (plan, verdicts with the "
        "policy version, approvals, actions per asset).",
        f"- The audit trail of the task: `qlrf audit list --task {TASK_ID}`, and `qlrf audit verify`.",
    ]
    for index, plan in enumerate(plans, start=1):
        md.append(
            f"- {'Plan ' + str(index) + ': d' if several else 'D'}rift items fixed: "
            f"{', '.join(plan.evidence.drift_item_ids[:10])}"
            + (f" and {len(plan.evidence.drift_item_ids) - 10} more" if len(plan.evidence.drift_item_ids) > 10 else "")
            + f"; snapshot key `{plan.evidence.snapshot_key[:16]}`; snapshots "
            + ", ".join(f"{s}={i}" for s, i in sorted(plan.evidence.snapshot_ids.items())) + "."
        )
    md += [
        "- Backups taken, maintenance window, approver and the change ticket.",
        "- Drift and compliance after the next refresh (`qlrf drift`, `qlrf tools call compliance_status`).",
        "",
    ]
    return title, "\n".join(md) + "\n"
