{#
  Golden image release statuses, in aggregation precedence: when the artifacts of one golden
  image version disagree (an AMI revoked in one region, still tagged production elsewhere), the
  most severe status wins: revoked > deprecated > production > testing > (none).
#}
{% macro image_status_rank(column) -%}
    case {{ column }}
        when 'revoked' then 4
        when 'deprecated' then 3
        when 'production' then 2
        when 'testing' then 1
    end
{%- endmacro %}

{% macro image_status_from_rank(rank_expression) -%}
    case {{ rank_expression }}
        when 4 then 'revoked'
        when 3 then 'deprecated'
        when 2 then 'production'
        when 1 then 'testing'
    end
{%- endmacro %}

{# "3 versions" / "1 version": a count with its noun, for human-readable detail sentences. #}
{% macro plural(count_expression, noun) -%}
    (cast({{ count_expression }} as varchar) || ' {{ noun }}' || case when {{ count_expression }} = 1 then '' else 's' end)
{%- endmacro %}

{# Golden image id: one per (family, version), the same on every provider. #}
{% macro golden_image_id(family, version) -%}
    case when {{ family }} is not null and {{ version }} is not null then {{ family }} || '@' || {{ version }} end
{%- endmacro %}
