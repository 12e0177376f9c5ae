{#
  Config drift as a chain of CTEs ending in `config_violations`: in-scope assets judged against
  the enabled rules of stg_drift_rules, one row per violation (snapshot_id, asset_id, rule_id),
  with what the rule expected, what the asset has, and a sentence for people.

  The rules are data: the scope is a join (an empty scope list means all; lists are OR, keys are
  AND; the tag selector needs every pair), and each check type is one CTE over the assets x rules
  of that type. No SQL is generated from the rules. Globs are matched through the RE2 regular
  expressions landed beside them (DuckDB's GLOB mishandles character classes followed by `*`),
  once per distinct instance type or OS text, not per asset.

  `pending`: the name of a CTE of (site_id, snapshot_id) to judge; the asset scan joins it first,
  so drift_observations judges only the snapshots it has not observed (an optimizer does not push
  that filter through the view). Without it every snapshot is judged (int_config_drift).

  Usage: with pending as (...), {{ config_drift_ctes('pending') }} select * from config_violations
#}
{% macro config_drift_ctes(pending=none) -%}
sites as (
    select site_id, snapshot_id, environment
    from {{ ref('stg_sites') }}
),

assets as (
    -- The population image drift judges too: kind vm / node / workload, not terminated.
    select
        assets.snapshot_id,
        assets.snapshot_at,
        assets.site_id,
        assets.provider,
        sites.environment,
        assets.asset_id,
        assets.name as asset_name,
        assets.kind,
        assets.state,
        assets.os,
        assets.instance_type,
        assets.public_ip,
        assets.disk_encryption,
        assets.image_ref,
        assets.attributes_json,
        assets.tags,
        list_transform(
            list_filter(coalesce(assets.tags, []), t -> coalesce(trim(t.value), '') <> ''),
            t -> lower(trim(t.key)) || '=' || lower(trim(t.value))
        ) as tag_pairs
    from {{ ref('stg_assets') }} as assets
    {%- if pending %}
    inner join {{ pending }}
        on assets.site_id = {{ pending }}.site_id
       and assets.snapshot_id = {{ pending }}.snapshot_id
    {%- endif %}
    left join sites
        on assets.site_id = sites.site_id
       and assets.snapshot_id = sites.snapshot_id
    where assets.kind in ('vm', 'node', 'workload')
      and assets.state is distinct from 'terminated'
),

rules as (
    select *
    from {{ ref('stg_drift_rules') }}
    where enabled
),

scoped as (
    -- Every (asset, rule) pair the rule's scope selects.
    select
        assets.*,
        rules.rule_id,
        rules.check_type,
        rules.severity,
        rules.instance_type_patterns,
        rules.minimum_encryption
    from assets
    inner join rules
        on (coalesce(len(rules.scope_providers), 0) = 0 or list_contains(rules.scope_providers, assets.provider))
       and (coalesce(len(rules.scope_sites), 0) = 0 or list_contains(rules.scope_sites, assets.site_id))
       and (coalesce(len(rules.scope_environments), 0) = 0 or list_contains(rules.scope_environments, assets.environment))
       and (coalesce(len(rules.scope_kinds), 0) = 0 or list_contains(rules.scope_kinds, assets.kind))
       and list_has_all(assets.tag_pairs, list_transform(coalesce(rules.scope_tags, []), s -> s.key || '=' || s.value))
),

-- required_tags ---------------------------------------------------------------------------------
tag_requirements as (
    select rule_id, requirement.key as tag_key, requirement.allowed, true as required
    from (select rule_id, unnest(required_tags) as requirement from rules where check_type = 'required_tags')
    union all
    select rule_id, requirement.key as tag_key, requirement.allowed, false as required
    from (select rule_id, unnest(optional_tags) as requirement from rules where check_type = 'required_tags')
),

tag_expectations as (
    select
        rule_id,
        string_agg(
            case
                when required and coalesce(len(allowed), 0) = 0 then tag_key
                when required then tag_key || ' in [' || array_to_string(allowed, ', ') || ']'
                else tag_key || ' (if present) in [' || array_to_string(allowed, ', ') || ']'
            end,
            '; ' order by not required, tag_key
        ) as expected
    from tag_requirements
    group by rule_id
),

asset_tag_values as (
    -- One value per lower-case key (a provider may report `Owner` and `owner`; keep one).
    select snapshot_id, asset_id, tag_key, min(tag_value) as tag_value
    from (
        select snapshot_id, asset_id, lower(trim(tag.key)) as tag_key, trim(tag.value) as tag_value
        from (select snapshot_id, asset_id, unnest(tags) as tag from assets)
    )
    where coalesce(tag_value, '') <> ''
    group by snapshot_id, asset_id, tag_key
),

tag_problems as (
    select
        scoped.snapshot_id,
        scoped.asset_id,
        scoped.rule_id,
        tag_requirements.tag_key,
        case
            when asset_tag_values.tag_value is null then tag_requirements.tag_key || ' missing'
            else tag_requirements.tag_key || '=' || asset_tag_values.tag_value
        end as problem
    from scoped
    inner join tag_requirements on scoped.rule_id = tag_requirements.rule_id
    left join asset_tag_values
        on scoped.snapshot_id = asset_tag_values.snapshot_id
       and scoped.asset_id = asset_tag_values.asset_id
       and tag_requirements.tag_key = asset_tag_values.tag_key
    where scoped.check_type = 'required_tags'
      and (
          (tag_requirements.required and asset_tag_values.tag_value is null)
          or (
              asset_tag_values.tag_value is not null
              and len(tag_requirements.allowed) > 0
              and not list_contains(tag_requirements.allowed, lower(asset_tag_values.tag_value))
          )
      )
),

required_tags_drift as (
    select
        scoped.*,
        'tags ' || tag_expectations.expected as expected,
        problems.actual
    from scoped
    inner join (
        select snapshot_id, asset_id, rule_id, string_agg(problem, ', ' order by tag_key) as actual
        from tag_problems
        group by snapshot_id, asset_id, rule_id
    ) as problems
        on scoped.snapshot_id = problems.snapshot_id
       and scoped.asset_id = problems.asset_id
       and scoped.rule_id = problems.rule_id
    inner join tag_expectations on scoped.rule_id = tag_expectations.rule_id
),

-- allowed_instance_types: an unknown instance type is not judged. Regular expressions are
-- evaluated once per distinct (rule, instance type), not per asset: an estate has few of them.
instance_type_verdicts as (
    select
        types.rule_id,
        types.type_text,
        len(list_filter(rules.instance_type_regexes, pattern -> regexp_full_match(types.type_text, pattern))) > 0 as allowed
    from (
        select distinct rule_id, lower(instance_type) as type_text
        from scoped
        where check_type = 'allowed_instance_types' and instance_type is not null
    ) as types
    inner join rules on types.rule_id = rules.rule_id
),

instance_type_drift as (
    select
        scoped.*,
        'instance type matching ' || array_to_string(scoped.instance_type_patterns, ', ') as expected,
        'instance type ' || scoped.instance_type as actual
    from scoped
    inner join instance_type_verdicts
        on scoped.rule_id = instance_type_verdicts.rule_id
       and lower(scoped.instance_type) = instance_type_verdicts.type_text
    where scoped.check_type = 'allowed_instance_types'
      and not instance_type_verdicts.allowed
),

-- disk_encryption: none < platform_managed < customer_managed; null (not reported) is not judged --
disk_encryption_drift as (
    select
        scoped.*,
        'disk encryption ' || minimum_encryption || ' or stronger' as expected,
        'disk encryption ' || disk_encryption as actual
    from scoped
    where check_type = 'disk_encryption'
      and disk_encryption is not null
      and coalesce(list_position(['none', 'platform_managed', 'customer_managed'], disk_encryption), 1)
          < list_position(['none', 'platform_managed', 'customer_managed'], minimum_encryption)
),

-- no_public_ip ------------------------------------------------------------------------------------
public_ip_drift as (
    select
        scoped.*,
        'no public IP' as expected,
        'public IP ' || trim(public_ip) as actual
    from scoped
    where check_type = 'no_public_ip'
      and coalesce(trim(public_ip), '') <> ''
),

-- image_pinned_by_digest: every container and init container image names its digest --------------
workload_images as (
    select
        scoped.*,
        list_concat(
            coalesce(json_extract_string(attributes_json, '$.containers[*].image'), []),
            coalesce(json_extract_string(attributes_json, '$.initContainers[*].image'), [])
        ) as listed_images
    from scoped
    where check_type = 'image_pinned_by_digest'
),

unpinned_images as (
    select
        workload_images.*,
        list_filter(
            case when len(listed_images) > 0 then listed_images else list_filter([image_ref], i -> i is not null) end,
            i -> i not like '%@sha256:%'
        ) as unpinned
    from workload_images
),

image_digest_drift as (
    select
        unpinned_images.* exclude (listed_images, unpinned),
        'every container image pinned by digest (@sha256:)' as expected,
        'not pinned: ' || array_to_string(list_sort(list_distinct(unpinned)), ', ') as actual
    from unpinned_images
    where len(unpinned) > 0
),

-- vsphere_tools_running: powered-on vSphere VMs only; a missing status is a failure ----------------
vsphere_tools_drift as (
    select
        scoped.*,
        'VMware Tools running' as expected,
        'VMware Tools ' || coalesce(json_extract_string(attributes_json, '$.toolsRunningStatus'), 'status not reported') as actual
    from scoped
    where check_type = 'vsphere_tools_running'
      and provider = 'vsphere'
      and kind = 'vm'
      and state = 'running'
      and coalesce(json_extract_string(attributes_json, '$.toolsRunningStatus'), '') <> 'guestToolsRunning'
),

-- os_end_of_life: the first release whose glob matches `lower(os) || ' '` gives the date (found
-- once per distinct (rule, OS text)); the asset fails when its snapshot was taken after that date.
os_releases_matched as (
    select
        texts.rule_id,
        texts.os_text,
        list_filter(rules.os_releases, release -> regexp_full_match(texts.os_text, release.regex))[1] as release
    from (
        select distinct rule_id, lower(os) || ' ' as os_text
        from scoped
        where check_type = 'os_end_of_life' and os is not null
    ) as texts
    inner join rules on texts.rule_id = rules.rule_id
),

os_end_of_life_drift as (
    select
        scoped.*,
        'OS within vendor support (' || trim(scoped.os) || ' ends '
            || strftime(matched.release.end_of_life, '%Y-%m-%d') || ')' as expected,
        trim(scoped.os) || ', end of life since ' || strftime(matched.release.end_of_life, '%Y-%m-%d') as actual
    from scoped
    inner join os_releases_matched as matched
        on scoped.rule_id = matched.rule_id
       and lower(scoped.os) || ' ' = matched.os_text
    where scoped.check_type = 'os_end_of_life'
      and matched.release.end_of_life < cast(scoped.snapshot_at as date)
),

violations as (
    select * from required_tags_drift
    union all by name
    select * from instance_type_drift
    union all by name
    select * from disk_encryption_drift
    union all by name
    select * from public_ip_drift
    union all by name
    select * from image_digest_drift
    union all by name
    select * from vsphere_tools_drift
    union all by name
    select * from os_end_of_life_drift
),

config_violations as (
    select
        snapshot_id,
        snapshot_at,
        site_id,
        provider,
        environment,
        asset_id,
        asset_name,
        kind,
        rule_id,
        check_type,
        severity,
        expected,
        actual,
        rule_id || ': ' || actual || ' (expected ' || expected || ')' as detail
    from violations
)
{%- endmacro %}
