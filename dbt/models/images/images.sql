{{ config(materialized='view') }}
-- Compatibility view: the platform's original schema called golden images `images`.
-- Referenced without the database (catalog) name, which DuckDB derives from the file name, so the
-- view keeps working when the warehouse file is copied, renamed or ATTACHed under another alias.
select * from {{ ref('golden_images').include(database=False) }}
