"""Image lineage as a graph of (parent -> child) edges: descendants, cycles, and a Markdown tree.

Edges come from two places, merged by the caller: links people registered in the control store,
and parents named by image tags at discovery (read from the lake). Both name images by golden
image id (`family@version`); a tag may name a provider image id instead, which `resolve` maps.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Iterable, Mapping

from qlrf_pipelines.models.vocabulary import LINEAGE_RELATIONS as RELATIONS


class LineageError(ValueError):
    """A link that cannot be registered (unknown relation, self link, cycle, unknown image)."""


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    relation: str
    source: str = "manual"  # manual | discovered


def children_index(edges: Iterable[Edge]) -> dict[str, list[Edge]]:
    index: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        index[edge.parent].append(edge)
    for kids in index.values():
        kids.sort(key=lambda e: e.child)
    return index


def descendants(edges: Iterable[Edge], image_id: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """Every image below `image_id` as (image, depth, path from image_id), breadth first; an image
    reached twice (a diamond) is listed once, at its shallowest depth. Cycles cannot loop."""
    index = children_index(edges)
    seen = {image_id}
    found: list[tuple[str, int, tuple[str, ...]]] = []
    queue: deque[tuple[str, int, tuple[str, ...]]] = deque([(image_id, 0, (image_id,))])
    while queue:
        node, depth, path = queue.popleft()
        for edge in index.get(node, ()):
            if edge.child in seen:
                continue
            seen.add(edge.child)
            child_path = path + (edge.child,)
            found.append((edge.child, depth + 1, child_path))
            queue.append((edge.child, depth + 1, child_path))
    return found


def path_between(edges: Iterable[Edge], start: str, goal: str) -> tuple[str, ...] | None:
    """A parent->child path from `start` down to `goal`, or None."""
    if start == goal:
        return (start,)
    for image, _depth, path in descendants(edges, start):
        if image == goal:
            return path
    return None


def check_link(edges: Iterable[Edge], child: str, parent: str, relation: str) -> None:
    """Refuse a link that is not a relation we know, links an image to itself, or closes a cycle
    (the parent already descends from the child), naming the existing path."""
    if relation not in RELATIONS:
        raise LineageError(f"unknown relation {relation!r}: use one of {', '.join(RELATIONS)}")
    if child == parent:
        raise LineageError(f"{child} cannot be its own parent")
    existing = list(edges)
    loop = path_between(existing, child, parent)
    if loop is not None:
        raise LineageError(
            f"linking {child} to parent {parent} would make a cycle: {parent} already descends from {child} "
            f"({' -> '.join(loop)})"
        )


def resolve(ref: str, golden_ids: set[str], provider_ids: Mapping[str, str]) -> str:
    """A golden image id for `ref`: itself if it is one, the golden image of a provider image id,
    else `ref` unchanged (an image outside the golden catalog, e.g. a vendor's public AMI)."""
    if ref in golden_ids:
        return ref
    return provider_ids.get(ref) or provider_ids.get(ref.lower()) or ref


def merge_edges(manual: Iterable[Edge], discovered: Iterable[Edge]) -> list[Edge]:
    """One edge per (parent, child): a registered link wins over what tags say."""
    merged: dict[tuple[str, str], Edge] = {}
    for edge in discovered:
        merged.setdefault((edge.parent, edge.child), edge)
    for edge in manual:
        merged[(edge.parent, edge.child)] = edge
    return sorted(merged.values(), key=lambda e: (e.parent, e.child))


def tree_markdown(
    edges: Iterable[Edge], statuses: Mapping[str, str | None] | None = None, max_lines: int = 400
) -> str:
    """The lineage forest as a nested Markdown list, roots first (images with no parent), e.g.

    - **ubuntu-22.04-base@1.0.0** (deprecated)
      - patched_from → **ubuntu-22.04-base@1.1.0** (deprecated)
    """
    edges = list(edges)
    statuses = statuses or {}
    index = children_index(edges)
    children = {e.child for e in edges}
    nodes = {e.parent for e in edges} | children
    roots = sorted({e.parent for e in edges} - children)
    lines: list[str] = []
    printed: set[str] = set()
    truncated = False

    def emit(line: str) -> bool:
        nonlocal truncated
        if len(lines) >= max_lines:
            truncated = True
            return False
        lines.append(line)
        return True

    def label(image: str) -> str:
        status = statuses.get(image)
        return f"**{image}**" + (f" ({status})" if status else "")

    def walk(node: str, depth: int, on_path: set[str]) -> None:
        for edge in index.get(node, ()):
            if edge.child in on_path:
                emit(f"{'  ' * depth}- {edge.relation} → {edge.child} (cycle)")
                continue
            if not emit(f"{'  ' * depth}- {edge.relation} → {label(edge.child)}"):
                return
            printed.add(edge.child)
            walk(edge.child, depth + 1, on_path | {edge.child})

    def tree_from(root: str, note: str = "") -> None:
        if emit(f"- {label(root)}{note}"):
            printed.add(root)
            walk(root, 1, {root})

    for root in roots:
        tree_from(root)
    # Images only reachable inside a cycle (tags that name each other) have no root: start each
    # such cycle at its smallest image id, so nothing in the lineage is left out of the tree.
    for node in sorted(nodes):
        if node not in printed and not truncated:
            tree_from(node, " (in a lineage cycle)")
    if truncated:
        lines.append(f"- … truncated at {max_lines} lines")
    return "\n".join(lines) if lines else "_no lineage registered or discovered yet_"
