{#
  A lake source that may have no file yet, e.g. the control store's tables before the first
  export (a user who only ran discovery and build_warehouse_job). DuckDB fails on a
  read_parquet glob that matches nothing, so at run time this counts the files matching the
  source's `lake_glob` meta and, when there are none, renders an empty relation typed by the
  `data_type` of the source's declared columns instead of the source.

  `source()` is always called, so the model depends on the source (Dagster's asset graph and
  dbt's DAG alike) whichever branch is rendered.

  Usage: select * from {{ lake_source_or_empty('raw_ai_tasks') }} as raw
#}
{% macro lake_source_or_empty(table_name, source_name='lake') -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ relation }}
    {%- else -%}
        {%- set node = graph.sources.values()
            | selectattr('source_name', 'equalto', source_name)
            | selectattr('name', 'equalto', table_name)
            | first -%}
        {%- set pattern = (node.config.meta or {}).get('lake_glob') or (node.meta or {}).get('lake_glob') -%}
        {%- if not pattern -%}
            {{ exceptions.raise_compiler_error("source " ~ source_name ~ "." ~ table_name ~ " has no lake_glob meta") }}
        {%- endif -%}
        {%- set found = run_query("select count(*) from glob('" ~ (pattern | replace("'", "''")) ~ "')") -%}
        {%- if found.columns[0].values()[0] > 0 -%}
            {{ relation }}
        {%- else -%}
            {%- set columns = node.columns.values() | list -%}
            {%- for column in columns if not column.data_type -%}
                {{ exceptions.raise_compiler_error("source " ~ source_name ~ "." ~ table_name ~ ": column " ~ column.name ~ " needs a data_type for the empty fallback") }}
            {%- endfor -%}
            {{ log("lake source " ~ source_name ~ "." ~ table_name ~ " has no file yet (" ~ pattern ~ "): reading it as empty", info=False) }}
            (select
            {%- for column in columns %}
                cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
            {%- endfor %}
            where false)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
