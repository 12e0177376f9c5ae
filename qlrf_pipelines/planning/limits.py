"""How much of a site one remediation plan may touch, and in what steps.

The numbers live in one data file, `qlrf_pipelines/policy/rego/limits.json`, which is also the
Rego policy's `data.qlrf.limits`: the planner plans within the limits and the policy denies plans
outside them, so the two cannot drift apart. The share caps below are computed exactly as the
policy computes them (`share_cap` in remediation.rego): floor(share * fleet), at least 1, with a
tiny epsilon so that e.g. 0.29 * 100 counts as 29 on both sides.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

LIMITS_FILE = Path(__file__).resolve().parent.parent / "policy" / "rego" / "limits.json"
_EPSILON = 1e-9  # must match remediation.rego


def share_cap(share: float, fleet_size: int) -> int:
    """Most assets a share of a fleet allows: floor(share * fleet), never below 1."""
    return max(1, math.floor(share * fleet_size + _EPSILON))


@dataclass(frozen=True)
class PlanningLimits:
    max_batch_size: int = 10
    """Most assets in one phase (canary or wave)."""
    max_wave_share_of_site: float = 0.25
    """Most of the site's fleet one phase may change at once."""
    max_plan_share_of_fleet: float = 0.5
    """Most of the site's fleet one plan may target; bigger groups are split into several plans."""
    canary_max_size: int = 2
    """Most assets in a canary phase."""
    canary_share: float = 0.1
    """Canary size as a share of the plan's targets (at least 1, at most canary_max_size)."""
    wave_failure_tolerance: float = 0.1
    """Share of a wave's assets allowed to fail its health checks (the canary tolerates none)."""
    production_environments: tuple[str, ...] = field(default=("production", "prod"))
    """Site environments that need a canary first."""

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "canary_max_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limit {name} must be an integer >= 1, got {value!r}")
        for name in ("max_wave_share_of_site", "max_plan_share_of_fleet", "canary_share"):
            value = getattr(self, name)
            if not 0 < float(value) <= 1:
                raise ValueError(f"limit {name} must be a share in (0, 1], got {value!r}")
        if not 0 <= float(self.wave_failure_tolerance) <= 1:
            raise ValueError(f"limit wave_failure_tolerance must be in [0, 1], got {self.wave_failure_tolerance!r}")
        object.__setattr__(self, "production_environments", tuple(self.production_environments))

    # -- the caps, as the policy computes them ------------------------------------------------
    def wave_cap(self, fleet_size: int) -> int:
        """Most assets one phase may hold at a site of this fleet size (batch and share caps)."""
        return min(self.max_batch_size, share_cap(self.max_wave_share_of_site, fleet_size))

    def plan_cap(self, fleet_size: int) -> int:
        """Most targets one plan may hold at a site of this fleet size."""
        return share_cap(self.max_plan_share_of_fleet, fleet_size)

    def canary_size(self, target_count: int, fleet_size: int) -> int:
        """Assets in the canary of a plan with this many targets (0 when there are none)."""
        if target_count <= 0:
            return 0
        wanted = max(1, math.floor(self.canary_share * target_count + _EPSILON))
        return min(wanted, self.canary_max_size, self.wave_cap(fleet_size), target_count)

    def is_production(self, environment: str | None) -> bool:
        return (environment or "") in self.production_environments

    # -- (de)serialisation --------------------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        """The document the policy reads as data.qlrf.limits."""
        data = asdict(self)
        data["production_environments"] = list(self.production_environments)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "PlanningLimits":
        """Keys starting with '_' are comments; any other unknown key is an error."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if not str(k).startswith("_")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown planning limit(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "PlanningLimits":
        """The limits of a limits.json file (the bundled one by default)."""
        return cls.from_mapping(json.loads(Path(path or LIMITS_FILE).read_text(encoding="utf-8")))


def load_limits(path: Path | str | None = None) -> PlanningLimits:
    return PlanningLimits.load(path)
