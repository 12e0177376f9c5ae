"""Safety checks: facts about a plan that policy limits do not cover, checked in Python.

Each check gives one Verdict of stage "safety" (policy_version "builtin"):
- safety.target_image_published: every target has a provider image to move to at its site;
- safety.targets_match_plan: every target is at the plan's site and environment and moves to the
  plan's golden image;
- safety.no_duplicate_assets: no asset is in two phases of the plan, nor in another plan given
  (`other_plans`: e.g. the other plans of the same planning run, or plans awaiting approval);
- safety.targets_known: every target is a known asset (only when `known_asset_ids` is given);
- safety.target_differs_from_current: no target would be "moved" to the image it already runs.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from qlrf_pipelines.planning.plan import Plan
from qlrf_pipelines.policy.verdicts import Verdict

BUILTIN = "builtin"
_SHOWN = 5  # asset ids quoted in a message


def _ids(asset_ids: Iterable[str]) -> str:
    ids = sorted(set(asset_ids))
    shown = ", ".join(ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def _verdict(rule: str, problems: list[str], ok_message: str, what: str) -> Verdict:
    if problems:
        return Verdict("safety", f"safety.{rule}", False, f"{len(set(problems))} {what}: {_ids(problems)}", BUILTIN)
    return Verdict("safety", f"safety.{rule}", True, ok_message, BUILTIN)


def safety_checks(
    plan: Plan,
    known_asset_ids: set[str] | None = None,
    other_plans: Iterable[Plan] = (),
) -> list[Verdict]:
    verdicts = []

    unpublished = [t.asset_id for t in plan.targets if not t.to_image_ref]
    verdicts.append(_verdict(
        "target_image_published", unpublished,
        f"{plan.to_image_id} is published at the site of every target",
        f"target(s) have no {plan.to_image_id} image published at their site",
    ))

    mismatched = [
        t.asset_id for t in plan.targets
        if t.site_id != plan.site_id or t.environment != plan.environment or t.to_image_id != plan.to_image_id
    ]
    verdicts.append(_verdict(
        "targets_match_plan", mismatched,
        "every target is at the plan's site and environment and moves to its image",
        f"target(s) are not at {plan.site_id} ({plan.environment}) or not moving to {plan.to_image_id}",
    ))

    phased = Counter(a for phase in plan.phases for a in phase.asset_ids)
    duplicates = [a for a, n in phased.items() if n > 1]
    own_hash = plan.plan_hash()  # `other_plans` may include this very plan: skip it
    elsewhere = {
        a for other in other_plans if other.plan_hash() != own_hash for phase in other.phases for a in phase.asset_ids
    }
    duplicates += [a for a in phased if a in elsewhere]
    verdicts.append(_verdict(
        "no_duplicate_assets", duplicates,
        "every asset is in one phase of one plan",
        "asset(s) appear twice (in this plan or in another plan)",
    ))

    if known_asset_ids is not None:
        unknown = [t.asset_id for t in plan.targets if t.asset_id not in known_asset_ids]
        verdicts.append(_verdict(
            "targets_known", unknown,
            "every target is a known asset",
            "target(s) are not known assets",
        ))

    unchanged = [
        t.asset_id for t in plan.targets
        if (t.from_image_id is not None and t.from_image_id == t.to_image_id)
        or (t.from_image_ref is not None and t.from_image_ref == t.to_image_ref)
    ]
    verdicts.append(_verdict(
        "target_differs_from_current", unchanged,
        "every target moves to an image other than the one it runs",
        "target(s) already run the target image",
    ))
    return verdicts
