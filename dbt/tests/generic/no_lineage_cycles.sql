{#
  Lineage must be a forest: fails with one row per image that descends from itself (a cycle that
  image tags declared; `qlrf images link` refuses to make one). The walk stops at the first repeat,
  so it ends on any graph.
#}
{% test no_lineage_cycles(model, parent_column='parent_image_id', child_column='child_image_id') %}
with recursive edges as (
    select {{ parent_column }} as parent_id, {{ child_column }} as child_id from {{ model }}
),
walk(start_id, image_id, path) as (
    select parent_id, child_id, [parent_id, child_id] from edges
    union all
    select walk.start_id, edges.child_id, list_append(walk.path, edges.child_id)
    from walk
    join edges on edges.parent_id = walk.image_id
    where not list_contains(walk.path[2:], edges.child_id)
)
select distinct start_id as image_id, array_to_string(path, ' > ') as cycle
from walk
where image_id = start_id
{% endtest %}
