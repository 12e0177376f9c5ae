"""Golden image status changes (images/promotion.py): every (current, target) pair."""

from __future__ import annotations

import pytest

from qlrf_pipelines.images.promotion import ALLOWED, STATUSES, PromotionError, check_transition

CURRENTS = (None, "testing", "production", "deprecated", "revoked")

# (current, target) -> True (a change), False (already there: a no-op), or the refusal message
EXPECTED: dict[tuple[str | None, str], bool | str] = {
    (None, "testing"): True,
    (None, "production"): True,
    (None, "deprecated"): True,
    (None, "revoked"): True,
    ("testing", "testing"): False,
    ("testing", "production"): True,
    ("testing", "deprecated"): True,
    ("testing", "revoked"): True,
    ("production", "testing"): "web@1 cannot go from production to testing",
    ("production", "production"): False,
    ("production", "deprecated"): True,
    ("production", "revoked"): True,
    ("deprecated", "testing"): "web@1 cannot go from deprecated to testing",
    ("deprecated", "production"): True,  # rolling back a bad release
    ("deprecated", "deprecated"): False,
    ("deprecated", "revoked"): True,
    ("revoked", "testing"): "web@1 is revoked; a revoked image cannot be promoted again",
    ("revoked", "production"): "web@1 is revoked; a revoked image cannot be promoted again",
    ("revoked", "deprecated"): "web@1 is revoked; a revoked image cannot be promoted again",
    ("revoked", "revoked"): False,
}


def test_the_table_covers_every_pair():
    assert set(EXPECTED) == {(c, t) for c in CURRENTS for t in STATUSES}
    assert STATUSES == ("testing", "production", "deprecated", "revoked")
    assert set(ALLOWED) == set(CURRENTS)


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED, key=lambda p: (str(p[0]), p[1])))
def test_transition(current, target):
    expected = EXPECTED[(current, target)]
    if isinstance(expected, bool):
        assert check_transition("web@1", current, target) is expected
    else:
        with pytest.raises(PromotionError) as refused:
            check_transition("web@1", current, target)
        assert str(refused.value) == expected


@pytest.mark.parametrize("current", CURRENTS)
def test_an_unknown_target_status_is_refused_from_any_status(current):
    with pytest.raises(PromotionError) as refused:
        check_transition("web@1", current, "retired")
    assert str(refused.value) == "unknown status 'retired': use one of testing, production, deprecated, revoked"


def test_an_unrecognised_current_status_allows_nothing():
    with pytest.raises(PromotionError) as refused:
        check_transition("web@1", "beta", "production")
    assert str(refused.value) == "web@1 cannot go from beta to production"


def test_revoked_is_final_and_any_status_may_be_revoked():
    assert ALLOWED["revoked"] == frozenset()
    assert all("revoked" in ALLOWED[c] for c in CURRENTS if c != "revoked")
