# Remediation plan policy: what a plan must look like before a person is asked to approve it.
#
# input: a plan (qlrf_pipelines.planning.plan.Plan as JSON).
# data.qlrf.limits: the limits document (limits.json next to this file), shared with the planner.
#
# results: rule id -> list of denial messages (an empty list means the rule allows the plan).
# deny:    the same as a set of {"rule": id, "message": text}.
#
# Every rule is a function of (plan, limits) so it can be unit-tested without `with input as`
# (which crashes the rego-cpp interpreter that regopy embeds). Share caps are
# floor(share * fleet_size), never below 1, computed exactly as planning/limits.py does.
# Messages never use sprintf's %q (rego-cpp does not support it), and no comprehension names a
# function argument in its head (rego-cpp then yields an empty collection): bind it in the body.
package qlrf.remediation

import rego.v1

rule_ids := [
	"production_needs_canary",
	"batch_size_capped",
	"wave_share_capped",
	"fleet_share_capped",
	"rollback_required",
	"health_checks_required",
	"failure_tolerance_capped",
]

limits := data.qlrf.limits

results := violations(input, limits)

deny contains {"rule": rule, "message": msg} if {
	some rule, msgs in results
	some msg in msgs
}

default allow := false

allow if count(deny) == 0

violations(plan, lim) := {
	"production_needs_canary": production_needs_canary(plan, lim),
	"batch_size_capped": batch_size_capped(plan, lim),
	"wave_share_capped": wave_share_capped(plan, lim),
	"fleet_share_capped": fleet_share_capped(plan, lim),
	"rollback_required": rollback_required(plan),
	"health_checks_required": health_checks_required(plan),
	"failure_tolerance_capped": failure_tolerance_capped(plan, lim),
}

share_cap(share, fleet) := max([1, floor((share * fleet) + 0.000000001)])

is_production(plan, lim) if plan.environment in lim.production_environments

# A production plan starts with a canary phase of at most canary_max_size assets.
production_needs_canary(plan, lim) := (no_phases | first_not_canary) | canary_too_big if {
	no_phases := {msg |
		is_production(plan, lim)
		count(plan.phases) == 0
		msg := "a production plan needs phases, starting with a canary"
	}
	first_not_canary := {msg |
		is_production(plan, lim)
		first := plan.phases[0]
		first.kind != "canary"
		msg := sprintf("a production plan must start with a canary phase; the first phase '%s' is a %s", [first.name, first.kind])
	}
	canary_too_big := {msg |
		is_production(plan, lim)
		first := plan.phases[0]
		first.kind == "canary"
		n := count(first.asset_ids)
		n > lim.canary_max_size
		msg := sprintf("canary phase '%s' has %d assets, more than canary_max_size %d", [first.name, n, lim.canary_max_size])
	}
}

# Every phase holds at most max_batch_size assets.
batch_size_capped(plan, lim) := {msg |
	some phase in plan.phases
	n := count(phase.asset_ids)
	n > lim.max_batch_size
	msg := sprintf("phase '%s' has %d assets, more than max_batch_size %d", [phase.name, n, lim.max_batch_size])
}

# Every phase changes at most max_wave_share_of_site of the site's fleet (at least 1 asset).
wave_share_capped(plan, lim) := {msg |
	cap := share_cap(lim.max_wave_share_of_site, plan.fleet_size)
	some phase in plan.phases
	n := count(phase.asset_ids)
	n > cap
	msg := sprintf(
		"phase '%s' has %d assets, more than max_wave_share_of_site %v of the site's %d assets (%d)",
		[phase.name, n, lim.max_wave_share_of_site, plan.fleet_size, cap],
	)
}

# A plan targets at most max_plan_share_of_fleet of the site's fleet (at least 1 asset), and the
# fleet it states can hold its targets.
fleet_share_capped(plan, lim) := too_many | fleet_too_small if {
	n := count(plan.targets)
	cap := share_cap(lim.max_plan_share_of_fleet, plan.fleet_size)
	too_many := {msg |
		n > cap
		msg := sprintf(
			"the plan targets %d assets, more than max_plan_share_of_fleet %v of the site's %d assets (%d)",
			[n, lim.max_plan_share_of_fleet, plan.fleet_size, cap],
		)
	}
	fleet_too_small := {msg |
		n > plan.fleet_size
		msg := sprintf("the plan targets %d assets but states a fleet of only %d", [n, plan.fleet_size])
	}
}

# A plan says when to roll back and has at least one restore step.
rollback_required(plan) := no_criteria | no_restore if {
	no_criteria := {msg |
		count(object.get(object.get(plan, "rollback", {}), "criteria", [])) == 0
		msg := "the rollback has no criteria (when to roll back)"
	}
	no_restore := {msg |
		steps := object.get(object.get(plan, "rollback", {}), "steps", [])
		count([s | some s in steps; s.action == "restore_image"]) == 0
		msg := "the rollback has no restore_image step"
	}
}

# Every phase has at least one health check.
health_checks_required(plan) := {msg |
	some phase in plan.phases
	count(object.get(phase, "health_checks", [])) == 0
	msg := sprintf("phase '%s' has no health check", [phase.name])
}

# A canary tolerates no failure; a wave at most wave_failure_tolerance of its assets.
failure_tolerance_capped(plan, lim) := {msg |
	some phase in plan.phases
	allowed := tolerance(phase.kind, lim)
	some check in object.get(phase, "health_checks", [])
	check.max_failed_share > allowed
	msg := sprintf(
		"health check %s of phase '%s' tolerates %v failed, more than %v allowed for a %s",
		[check.kind, phase.name, check.max_failed_share, allowed, phase.kind],
	)
}

tolerance(kind, lim) := 0 if kind == "canary"

tolerance(kind, lim) := lim.wave_failure_tolerance if kind != "canary"
