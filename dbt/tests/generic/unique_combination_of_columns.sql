{#
  Composite-key uniqueness: fails with one row per duplicated combination.
  Usage:
    data_tests:
      - unique_combination_of_columns:
          arguments:
            combination_of_columns: [site_id, snapshot_id]
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{%- set columns_csv = combination_of_columns | join(', ') -%}
select {{ columns_csv }}, count(*) as duplicates
from {{ model }}
group by {{ columns_csv }}
having count(*) > 1
{% endtest %}
