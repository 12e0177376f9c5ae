{#
  Use the custom schema name exactly as configured (`staging`, `main`), not dbt's default
  `<target_schema>_<custom>`: contract tables must be `main.<name>` because users query them by
  name, and staging/intermediate models live in `staging`.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
