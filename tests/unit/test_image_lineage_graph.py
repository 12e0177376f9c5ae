"""Image lineage as a graph (images/lineage.py): descendants, paths, the link checks that keep it a
DAG, provider id resolution, merging registered links over discovered ones, and the Markdown tree."""

from __future__ import annotations

import pytest

from qlrf_pipelines.images.lineage import (
    RELATIONS,
    Edge,
    LineageError,
    check_link,
    children_index,
    descendants,
    merge_edges,
    path_between,
    resolve,
    tree_markdown,
)

# base@1 -> base@2 -> base@3 -> base@4 -> base@5 -> app@1, and base@3 -> other@1
DEEP = [
    Edge("base@1", "base@2", "patched_from"),
    Edge("base@2", "base@3", "derived_from"),
    Edge("base@3", "base@4", "derived_from"),
    Edge("base@4", "base@5", "rebuilt_from"),
    Edge("base@5", "app@1", "derived_from"),
    Edge("base@3", "other@1", "derived_from"),
]


# ---------------------------------------------------------------- descendants and paths
def test_descendants_of_the_root_are_breadth_first_with_depths_and_paths():
    # Arrange
    edges = list(reversed(DEEP))  # input order must not matter

    # Act
    found = descendants(edges, "base@1")

    # Assert
    assert found == [
        ("base@2", 1, ("base@1", "base@2")),
        ("base@3", 2, ("base@1", "base@2", "base@3")),
        ("base@4", 3, ("base@1", "base@2", "base@3", "base@4")),
        ("other@1", 3, ("base@1", "base@2", "base@3", "other@1")),
        ("base@5", 4, ("base@1", "base@2", "base@3", "base@4", "base@5")),
        ("app@1", 5, ("base@1", "base@2", "base@3", "base@4", "base@5", "app@1")),
    ]


def test_descendants_of_a_middle_image_and_of_a_leaf():
    assert descendants(DEEP, "base@3") == [
        ("base@4", 1, ("base@3", "base@4")),
        ("other@1", 1, ("base@3", "other@1")),
        ("base@5", 2, ("base@3", "base@4", "base@5")),
        ("app@1", 3, ("base@3", "base@4", "base@5", "app@1")),
    ]
    assert descendants(DEEP, "app@1") == []
    assert descendants(DEEP, "not-in-the-graph@1") == []


def test_a_diamond_is_listed_once_at_its_shallowest_depth():
    # Arrange: top reaches bottom directly (depth 1) and through left -> mid (depth 3)
    edges = [
        Edge("top", "left", "derived_from"),
        Edge("left", "mid", "derived_from"),
        Edge("mid", "bottom", "derived_from"),
        Edge("top", "bottom", "patched_from"),
        Edge("top", "right", "derived_from"),
        Edge("right", "mid", "derived_from"),
    ]

    # Act
    found = descendants(edges, "top")

    # Assert
    assert [image for image, _d, _p in found] == ["bottom", "left", "right", "mid"]
    assert found[0] == ("bottom", 1, ("top", "bottom"))
    assert found[3] == ("mid", 2, ("top", "left", "mid"))  # via the alphabetically first parent at depth 1


def test_descendants_terminate_on_a_cycle():
    edges = [Edge("a", "b", "derived_from"), Edge("b", "c", "derived_from"), Edge("c", "a", "derived_from")]
    assert descendants(edges, "a") == [("b", 1, ("a", "b")), ("c", 2, ("a", "b", "c"))]


def test_children_index_sorts_children():
    index = children_index(DEEP)
    assert [e.child for e in index["base@3"]] == ["base@4", "other@1"]
    assert "app@1" not in index


def test_path_between():
    assert path_between(DEEP, "base@1", "app@1") == ("base@1", "base@2", "base@3", "base@4", "base@5", "app@1")
    assert path_between(DEEP, "base@2", "other@1") == ("base@2", "base@3", "other@1")
    assert path_between(DEEP, "base@4", "base@4") == ("base@4",)
    assert path_between(DEEP, "app@1", "base@1") is None  # edges point down only
    assert path_between(DEEP, "other@1", "app@1") is None  # siblings' branches


# ---------------------------------------------------------------- check_link
def test_check_link_accepts_a_new_branch_and_every_known_relation():
    for relation in RELATIONS:
        assert check_link(DEEP, "other@2", "other@1", relation) is None
    assert check_link(DEEP, "app@1", "other@1", "derived_from") is None  # a second parent is no cycle


def test_check_link_refuses_a_cycle_naming_the_existing_path():
    # Act: base@1 as a child of app@1, which already descends from base@1
    with pytest.raises(LineageError) as refused:
        check_link(DEEP, "base@1", "app@1", "derived_from")

    # Assert
    assert str(refused.value) == (
        "linking base@1 to parent app@1 would make a cycle: app@1 already descends from base@1 "
        "(base@1 -> base@2 -> base@3 -> base@4 -> base@5 -> app@1)"
    )


def test_check_link_refuses_a_two_image_cycle():
    with pytest.raises(LineageError, match=r"\(base@4 -> base@5\)$"):
        check_link(DEEP, "base@4", "base@5", "rebuilt_from")


def test_check_link_refuses_a_self_link():
    with pytest.raises(LineageError) as refused:
        check_link(DEEP, "base@3", "base@3", "derived_from")
    assert str(refused.value) == "base@3 cannot be its own parent"


def test_check_link_refuses_an_unknown_relation_before_anything_else():
    with pytest.raises(LineageError) as refused:
        check_link(DEEP, "base@3", "base@3", "forked_from")
    assert str(refused.value) == "unknown relation 'forked_from': use one of derived_from, patched_from, rebuilt_from"


def test_check_link_accepts_any_iterable_of_edges():
    with pytest.raises(LineageError, match="would make a cycle"):
        check_link(iter(DEEP), "base@2", "other@1", "derived_from")


# ---------------------------------------------------------------- resolve
def test_resolve_golden_id_provider_id_and_outside_images():
    golden = {"base@1", "base@2"}
    providers = {"ami-0abc": "base@1", "AMI-0MIXED": "base@2", "ami-0mixed": "base@2"}

    assert resolve("base@1", golden, providers) == "base@1"
    assert resolve("ami-0abc", golden, providers) == "base@1"
    assert resolve("AMI-0ABC", golden, providers) == "base@1"  # case-insensitive through the lower-case key
    assert resolve("Ami-0Mixed", golden, providers) == "base@2"
    assert resolve("ami-vendor-ubuntu", golden, providers) == "ami-vendor-ubuntu"  # unchanged


# ---------------------------------------------------------------- merge_edges
def test_merge_edges_a_registered_link_wins_over_a_discovered_one():
    # Arrange
    discovered = [
        Edge("base@1", "base@2", "derived_from", "discovered"),
        Edge("base@2", "base@3", "derived_from", "discovered"),
        Edge("base@2", "base@3", "rebuilt_from", "discovered"),  # a second tag naming the same pair
    ]
    manual = [
        Edge("base@1", "base@2", "patched_from", "manual"),
        Edge("base@3", "base@4", "derived_from", "manual"),
    ]

    # Act
    merged = merge_edges(manual, discovered)

    # Assert
    assert merged == [
        Edge("base@1", "base@2", "patched_from", "manual"),
        Edge("base@2", "base@3", "derived_from", "discovered"),  # the first discovered edge of a pair
        Edge("base@3", "base@4", "derived_from", "manual"),
    ]


def test_merge_edges_of_nothing():
    assert merge_edges([], []) == []


# ---------------------------------------------------------------- tree_markdown
FOREST = [
    Edge("b@1", "c@1", "derived_from"),
    Edge("b@2", "b@3", "derived_from"),
    Edge("b@1", "b@2", "patched_from"),
    Edge("a@1", "a@2", "rebuilt_from"),
]
FOREST_STATUSES = {"a@1": "deprecated", "a@2": "production", "b@1": "revoked", "b@3": "testing", "b@2": None}


def test_tree_markdown_of_a_small_forest():
    assert tree_markdown(FOREST, FOREST_STATUSES) == "\n".join(
        [
            "- **a@1** (deprecated)",
            "  - rebuilt_from → **a@2** (production)",
            "- **b@1** (revoked)",
            "  - patched_from → **b@2**",
            "    - derived_from → **b@3** (testing)",
            "  - derived_from → **c@1**",
        ]
    )


def test_tree_markdown_without_statuses_and_when_empty():
    assert tree_markdown([Edge("x@1", "x@2", "derived_from")]) == "- **x@1**\n  - derived_from → **x@2**"
    assert tree_markdown([]) == "_no lineage registered or discovered yet_"


def test_tree_markdown_of_the_deep_lineage():
    assert tree_markdown(DEEP, {"base@1": "revoked"}) == "\n".join(
        [
            "- **base@1** (revoked)",
            "  - patched_from → **base@2**",
            "    - derived_from → **base@3**",
            "      - derived_from → **base@4**",
            "        - rebuilt_from → **base@5**",
            "          - derived_from → **app@1**",
            "      - derived_from → **other@1**",
        ]
    )


def test_tree_markdown_marks_a_cycle_below_a_root():
    edges = [Edge("r", "x", "derived_from"), Edge("x", "y", "derived_from"), Edge("y", "x", "patched_from")]
    assert tree_markdown(edges) == "\n".join(
        [
            "- **r**",
            "  - derived_from → **x**",
            "    - derived_from → **y**",
            "      - patched_from → x (cycle)",
        ]
    )


def test_tree_markdown_truncates():
    # Act
    tree = tree_markdown(FOREST, FOREST_STATUSES, max_lines=3)

    # Assert
    assert tree == "\n".join(
        [
            "- **a@1** (deprecated)",
            "  - rebuilt_from → **a@2** (production)",
            "- **b@1** (revoked)",
            "- … truncated at 3 lines",
        ]
    )


def test_tree_markdown_truncates_inside_a_branch():
    assert tree_markdown(DEEP, max_lines=2) == "- **base@1**\n  - patched_from → **base@2**\n- … truncated at 2 lines"


def test_tree_markdown_that_fits_exactly_is_not_marked_truncated():
    # A forest of exactly max_lines lines loses nothing, so it must not claim to be truncated.
    tree = tree_markdown(FOREST, FOREST_STATUSES, max_lines=6)
    assert tree == tree_markdown(FOREST, FOREST_STATUSES), (
        "BUG lineage.py tree_markdown: `if len(lines) >= max_lines` appends '- … truncated at 6 lines' "
        "when the tree has exactly max_lines lines and nothing was cut"
    )


def test_tree_markdown_shows_a_cycle_that_has_no_root():
    # Tags are not cycle-checked at discovery, so discovered edges may form a cycle with no root image.
    edges = [
        Edge("r@1", "s@1", "derived_from"),
        Edge("x@1", "y@1", "derived_from", "discovered"),
        Edge("y@1", "x@1", "derived_from", "discovered"),
    ]

    tree = tree_markdown(edges)

    assert tree.startswith("- **r@1**\n  - derived_from → **s@1**")
    assert "x@1" in tree and "y@1" in tree, (
        "BUG lineage.py tree_markdown: roots are only images with no parent, so a cycle with no root "
        f"(x@1 <-> y@1) is silently left out of the tree: {tree!r}"
    )
    assert tree_markdown(edges[1:]) != "_no lineage registered or discovered yet_", (
        "BUG lineage.py tree_markdown: a lineage made only of a cycle is reported as no lineage at all"
    )
