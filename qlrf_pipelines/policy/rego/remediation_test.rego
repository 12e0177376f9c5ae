# Unit tests of remediation.rego: one allowing and one denying case per rule.
#
# Run by tests/unit/test_policy_rego.py (rego-cpp has no `opa test`); with OPA they also run as
# `opa test qlrf_pipelines/policy/rego`. The rules are called as functions of (plan, limits):
# never use `with input as` here, it crashes the rego-cpp interpreter (regopy 1.5).
package qlrf.remediation_test

import data.qlrf.remediation
import rego.v1

# Limits of the tests, independent of the bundled limits.json.
lim := {
	"max_batch_size": 4,
	"max_wave_share_of_site": 0.25,
	"max_plan_share_of_fleet": 0.5,
	"canary_max_size": 2,
	"canary_share": 0.1,
	"wave_failure_tolerance": 0.1,
	"production_environments": ["production"],
}

# rego-cpp: a function argument in a comprehension's head yields nothing; bind it in the body.
ids(prefix, n) := [id | some i in numbers.range(1, n); id := sprintf("%s-%d", [prefix, i])]

checks(tolerance) := [
	{"kind": "asset_running", "description": "assets run", "max_failed_share": tolerance},
	{"kind": "image_matches_target", "description": "assets run the target image", "max_failed_share": tolerance},
]

canary(asset_ids) := {"name": "canary", "kind": "canary", "asset_ids": asset_ids, "health_checks": checks(0)}

wave(name, asset_ids) := {"name": name, "kind": "wave", "asset_ids": asset_ids, "health_checks": checks(0.1)}

good_rollback := {
	"criteria": ["any health check fails"],
	"steps": [{"action": "restore_image", "description": "restore the previous image"}],
}

plan_of(environment, fleet_size, phases, rollback) := {
	"environment": environment,
	"fleet_size": fleet_size,
	"targets": [{"asset_id": a} | some p in phases; some a in p.asset_ids],
	"phases": phases,
	"rollback": rollback,
}

# production, 40 assets: canary 1, then waves of at most 4 (batch) and 10 (share) assets.
good_production := plan_of(
	"production", 40,
	[canary(["a-0"]), wave("wave-1", ids("a", 4)), wave("wave-2", ids("b", 3))],
	good_rollback,
)

good_staging := plan_of("staging", 12, [wave("wave-1", ids("s", 3))], good_rollback)

denied(plan, rule) := remediation.violations(plan, lim)[rule]

# -- the whole policy ---------------------------------------------------------------------------

test_good_plans_pass_every_rule if {
	every rule in remediation.rule_ids {
		count(denied(good_production, rule)) == 0
		count(denied(good_staging, rule)) == 0
	}
}

test_every_rule_id_is_evaluated if {
	evaluated := object.keys(remediation.violations(good_production, lim))
	declared := {rule | some rule in remediation.rule_ids}
	evaluated == declared
	count(declared) == count(remediation.rule_ids)
}

test_bundled_limits_are_loaded if {
	data.qlrf.limits.max_batch_size >= 1
	count(data.qlrf.limits.production_environments) > 0
}

test_share_cap_is_at_least_one if {
	remediation.share_cap(0.25, 2) == 1
	remediation.share_cap(0.25, 40) == 10
	remediation.share_cap(0.29, 100) == 29
}

# -- production_needs_canary --------------------------------------------------------------------

test_production_needs_canary_allows_small_canary if {
	count(denied(good_production, "production_needs_canary")) == 0
}

test_production_needs_canary_allows_staging_without_canary if {
	count(denied(good_staging, "production_needs_canary")) == 0
}

test_production_needs_canary_denies_production_without_canary if {
	plan := plan_of("production", 40, [wave("wave-1", ids("a", 3))], good_rollback)
	count(denied(plan, "production_needs_canary")) == 1
}

test_production_needs_canary_denies_big_canary if {
	plan := plan_of("production", 40, [canary(ids("a", 3)), wave("wave-1", ids("b", 3))], good_rollback)
	count(denied(plan, "production_needs_canary")) == 1
}

test_production_needs_canary_denies_no_phases if {
	plan := plan_of("production", 40, [], good_rollback)
	count(denied(plan, "production_needs_canary")) == 1
}

# -- batch_size_capped --------------------------------------------------------------------------

test_batch_size_capped_allows_full_batch if {
	plan := plan_of("staging", 100, [wave("wave-1", ids("a", 4))], good_rollback)
	count(denied(plan, "batch_size_capped")) == 0
}

test_batch_size_capped_denies_big_wave if {
	plan := plan_of("staging", 100, [wave("wave-1", ids("a", 5)), wave("wave-2", ids("b", 6))], good_rollback)
	count(denied(plan, "batch_size_capped")) == 2
}

# -- wave_share_capped --------------------------------------------------------------------------

test_wave_share_capped_allows_share if {
	plan := plan_of("staging", 12, [wave("wave-1", ids("a", 3)), wave("wave-2", ids("b", 3))], good_rollback)
	count(denied(plan, "wave_share_capped")) == 0
}

test_wave_share_capped_allows_one_asset_of_a_tiny_fleet if {
	plan := plan_of("staging", 2, [wave("wave-1", ["a"])], good_rollback)
	count(denied(plan, "wave_share_capped")) == 0
}

test_wave_share_capped_denies_wave_over_share if {
	plan := plan_of("staging", 12, [wave("wave-1", ids("a", 4))], good_rollback)
	count(denied(plan, "wave_share_capped")) == 1
}

# -- fleet_share_capped -------------------------------------------------------------------------

test_fleet_share_capped_allows_half_the_fleet if {
	plan := plan_of("staging", 12, [wave("wave-1", ids("a", 3)), wave("wave-2", ids("b", 3))], good_rollback)
	count(denied(plan, "fleet_share_capped")) == 0
}

test_fleet_share_capped_denies_more_than_half if {
	phases := [wave("wave-1", ids("a", 3)), wave("wave-2", ids("b", 3)), wave("wave-3", ["c"])]
	count(denied(plan_of("staging", 12, phases, good_rollback), "fleet_share_capped")) == 1
}

test_fleet_share_capped_denies_fleet_smaller_than_targets if {
	plan := plan_of("staging", 0, [wave("wave-1", ["a", "b"])], good_rollback)
	count(denied(plan, "fleet_share_capped")) == 2
}

# -- rollback_required --------------------------------------------------------------------------

test_rollback_required_allows_restore if {
	count(denied(good_staging, "rollback_required")) == 0
}

test_rollback_required_denies_no_steps if {
	plan := plan_of("staging", 12, [wave("wave-1", ["a"])], {"criteria": ["any health check fails"], "steps": []})
	count(denied(plan, "rollback_required")) == 1
}

test_rollback_required_denies_no_criteria if {
	rollback := {"criteria": [], "steps": good_rollback.steps}
	count(denied(plan_of("staging", 12, [wave("wave-1", ["a"])], rollback), "rollback_required")) == 1
}

# -- health_checks_required ---------------------------------------------------------------------

test_health_checks_required_allows_checked_phases if {
	count(denied(good_production, "health_checks_required")) == 0
}

test_health_checks_required_denies_unchecked_phase if {
	unchecked := {"name": "wave-1", "kind": "wave", "asset_ids": ["a"], "health_checks": []}
	count(denied(plan_of("staging", 12, [unchecked], good_rollback), "health_checks_required")) == 1
}

# -- failure_tolerance_capped -------------------------------------------------------------------

test_failure_tolerance_capped_allows_tolerant_wave if {
	count(denied(good_production, "failure_tolerance_capped")) == 0
}

test_failure_tolerance_capped_denies_tolerant_canary if {
	lenient := {"name": "canary", "kind": "canary", "asset_ids": ["a"], "health_checks": checks(0.1)}
	plan := plan_of("production", 40, [lenient, wave("wave-1", ["b"])], good_rollback)
	count(denied(plan, "failure_tolerance_capped")) == 2
}

test_failure_tolerance_capped_denies_lenient_wave if {
	lenient := {"name": "wave-1", "kind": "wave", "asset_ids": ["a"], "health_checks": checks(0.5)}
	count(denied(plan_of("staging", 12, [lenient], good_rollback), "failure_tolerance_capped")) == 2
}
