"""Evaluate a plan against the bundled Rego policies, in-process, with regopy (rego-cpp).

The policy bundle is every `*.rego` file under `policy/rego/` except the `*_test.rego` unit tests,
plus `limits.json` as `data.qlrf.limits`. Its version is the first 12 hex digits of the SHA-256
of those files (sorted by name, then the limits), so a stored verdict names the exact rules and
limits it was judged by. Evaluation fails closed: a rule that does not evaluate is a denial.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qlrf_pipelines.planning.limits import LIMITS_FILE, PlanningLimits
from qlrf_pipelines.planning.plan import Plan, canonical_json
from qlrf_pipelines.policy.verdicts import Verdict

REGO_DIR = Path(__file__).resolve().parent / "rego"
PACKAGE = "qlrf.remediation"
RULE_PREFIX = "remediation."
# The rules remediation.rego declares (its `rule_ids`); listed here too so that a rule missing from
# the policy's results is reported as a denial instead of silently disappearing.
RULE_IDS: tuple[str, ...] = (
    "production_needs_canary",
    "batch_size_capped",
    "wave_share_capped",
    "fleet_share_capped",
    "rollback_required",
    "health_checks_required",
    "failure_tolerance_capped",
)


class PolicyError(RuntimeError):
    pass


@dataclass(frozen=True)
class PolicyBundle:
    modules: tuple[tuple[str, str], ...]  # (file name, source)
    limits_text: str
    version: str


def policy_files(rego_dir: Path = REGO_DIR) -> list[Path]:
    """The policy modules, without their unit tests, in a stable order."""
    return sorted(p for p in rego_dir.glob("*.rego") if not p.name.endswith("_test.rego"))


def _version(modules: tuple[tuple[str, str], ...], limits_text: str) -> str:
    digest = hashlib.sha256()
    for _, source in modules:
        digest.update(source.encode("utf-8"))
    digest.update(limits_text.encode("utf-8"))
    return digest.hexdigest()[:12]


@lru_cache(maxsize=4)
def load_bundle(rego_dir: Path = REGO_DIR, limits_file: Path = LIMITS_FILE) -> PolicyBundle:
    modules = tuple((p.name, p.read_text(encoding="utf-8")) for p in policy_files(rego_dir))
    if not modules:
        raise PolicyError(f"{rego_dir}: no Rego policy files")
    limits_text = limits_file.read_text(encoding="utf-8")
    return PolicyBundle(modules, limits_text, _version(modules, limits_text))


def policy_version(limits: PlanningLimits | None = None) -> str:
    """Version of the bundled policy with the bundled limits, or with `limits` instead of them."""
    bundle = load_bundle()
    if limits is None or limits == _bundled_limits(bundle):
        return bundle.version
    return _version(bundle.modules, canonical_json(limits.to_data()))


def _bundled_limits(bundle: PolicyBundle) -> PlanningLimits:
    return PlanningLimits.from_mapping(json.loads(bundle.limits_text))


def _interpreter(bundle: PolicyBundle, limits_data: dict):
    from regopy import Interpreter

    interpreter = Interpreter()
    interpreter.add_data({"qlrf": {"limits": limits_data}})
    for name, source in bundle.modules:
        interpreter.add_module(name, source)
    return interpreter


def _limits_data(bundle: PolicyBundle, limits: PlanningLimits | None) -> dict:
    # The bundled limits go through PlanningLimits too, so the policy never sees limits the
    # planner would reject.
    return (limits if limits is not None else _bundled_limits(bundle)).to_data()


def rego_results(plan_data: dict, limits: PlanningLimits | None = None) -> dict[str, list[str]]:
    """The policy's `results` for a plan document: rule id -> denial messages (raises PolicyError)."""
    from regopy import RegoError

    bundle = load_bundle()
    try:
        interpreter = _interpreter(bundle, _limits_data(bundle, limits))
        interpreter.set_input(plan_data)
        output = interpreter.query(f"data.{PACKAGE}.results")
    except RegoError as exc:
        raise PolicyError(f"policy evaluation failed: {exc}") from None
    text = str(output)
    if not output.ok():
        raise PolicyError(f"policy evaluation failed: {text}")
    try:
        parsed = json.loads(text)
        results = parsed["expressions"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise PolicyError(f"policy gave no results for the plan: {text}") from None
    if not isinstance(results, dict):
        raise PolicyError(f"policy results are not an object: {text}")
    return {str(rule): sorted(str(m) for m in (messages or [])) for rule, messages in results.items()}


def evaluate_policies(plan: Plan, limits: PlanningLimits | None = None) -> list[Verdict]:
    """One policy Verdict per rule id, in RULE_IDS order (then any extra rule the policy reports).

    `limits` replaces the bundled limits.json (tests, or a deployment with its own limits); the
    verdicts' policy_version then covers those limits instead.
    """
    version = policy_version(limits)
    try:
        results = rego_results(plan.model_dump(mode="json"), limits)
    except PolicyError as exc:
        return [Verdict("policy", RULE_PREFIX + rule, False, str(exc), version) for rule in RULE_IDS]
    verdicts = []
    for rule in list(RULE_IDS) + sorted(set(results) - set(RULE_IDS)):
        if rule not in results:
            verdicts.append(Verdict("policy", RULE_PREFIX + rule, False, "the policy did not evaluate this rule", version))
            continue
        messages = results[rule]
        if messages:
            verdicts.append(Verdict("policy", RULE_PREFIX + rule, False, "; ".join(messages), version))
        else:
            verdicts.append(Verdict("policy", RULE_PREFIX + rule, True, "allowed", version))
    return verdicts
