"""Which status changes a golden image may go through.

testing -> production -> deprecated, and any status -> revoked. A deprecated image may be promoted
back to production (rolling back a bad release); revoked is final, because a revoked image is one
nobody may launch again, and un-revoking it silently would undo a security decision.
"""

from __future__ import annotations

from qlrf_pipelines.models.vocabulary import IMAGE_STATUSES as STATUSES

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset(STATUSES),
    "testing": frozenset({"production", "deprecated", "revoked"}),
    "production": frozenset({"deprecated", "revoked"}),
    "deprecated": frozenset({"production", "revoked"}),
    "revoked": frozenset(),
}


class PromotionError(ValueError):
    """A status change that is not allowed, with the reason."""


def check_transition(image_id: str, current: str | None, target: str) -> bool:
    """True when the change is needed, False when the image already has `target` (a no-op);
    raises PromotionError when it is not allowed."""
    if target not in STATUSES:
        raise PromotionError(f"unknown status {target!r}: use one of {', '.join(STATUSES)}")
    if current == target:
        return False
    if target not in ALLOWED.get(current, frozenset()):
        if current == "revoked":
            raise PromotionError(f"{image_id} is revoked; a revoked image cannot be promoted again")
        raise PromotionError(f"{image_id} cannot go from {current or 'no status'} to {target}")
    return True
