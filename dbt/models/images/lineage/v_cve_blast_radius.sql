{{ config(materialized='view', post_hook="{{ create_cve_blast_radius_macro(this) }}") }}
-- Blast radius of every known vulnerability: the images that carry it and the assets running them.
-- It starts at each image a scanner found the CVE in ('scanned') and walks down the lineage to every
-- descendant that still carries the vulnerable package version: its SBOM lists that package at that
-- version ('sbom'), or it has neither an SBOM nor a scan, so nothing says it was fixed
-- ('inherited', reported rather than assumed safe). A descendant whose SBOM or scan shows the
-- package fixed or gone stops the walk there. One row per (CVE, package, image, running asset);
-- an affected image that runs nowhere has one row with a null asset.
-- The SQL lives in macros/cve_blast_radius.sql, shared with the table macro cve_blast_radius(cve)
-- (created by the post-hook) that `qlrf blast-radius --cve` calls.
{{ cve_blast_radius_query('true') }}
