{{ config(materialized='view') }}
-- The lineage forest, one row per image per path from its root: roots (images that are a parent
-- but nobody's child) at depth 0, then every descendant with its depth, its parent, the relation
-- and the path of image ids from the root. Recursion never revisits an image already on the path,
-- so tag-declared cycles cannot loop. Images that no root reaches (a cycle with no way in, which
-- the image_lineage cycle check reports) each start a walk of their own, marked root_in_cycle, so
-- nothing in image_lineage is left out. An image reached by two paths (a diamond) has two rows.
with recursive edges as (
    select parent_image_id, child_image_id, relation from {{ ref('image_lineage').include(database=False) }}
),

true_roots as (
    select distinct parent_image_id as image_id
    from edges
    where parent_image_id not in (select child_image_id from edges)
),

reachable(image_id) as (
    select image_id from true_roots
    union
    select edges.child_image_id
    from reachable
    join edges on edges.parent_image_id = reachable.image_id
),

roots as (
    select image_id, false as root_in_cycle from true_roots
    union all
    select distinct parent_image_id, true
    from edges
    where parent_image_id not in (select image_id from reachable)
),

tree(root_image_id, root_in_cycle, image_id, parent_image_id, relation, depth, path) as (
    select image_id, root_in_cycle, image_id, null::varchar, null::varchar, 0, [image_id]
    from roots
    union all
    select
        tree.root_image_id,
        tree.root_in_cycle,
        edges.child_image_id,
        edges.parent_image_id,
        edges.relation,
        tree.depth + 1,
        list_append(tree.path, edges.child_image_id)
    from tree
    join edges on edges.parent_image_id = tree.image_id
    where not list_contains(tree.path, edges.child_image_id)
)

select
    tree.root_image_id,
    tree.root_in_cycle,
    tree.image_id,
    tree.parent_image_id,
    tree.relation,
    tree.depth,
    tree.path,
    array_to_string(tree.path, ' > ') as path_text,
    golden.family,
    golden.version,
    -- an image registered ahead of discovery has no catalog row, but may have been promoted
    coalesce(golden.status, promoted.to_status) as status,
    golden.is_current,
    coalesce(golden.assets_running, 0) as assets_running
from tree
left join {{ ref('golden_images').include(database=False) }} as golden on golden.image_id = tree.image_id
left join {{ ref('image_promotions').include(database=False) }} as promoted on promoted.image_id = tree.image_id and promoted.is_latest
