{#
    One row per customer version with the interval it was valid in, for as-of joins (`valid_from <= t < valid_to`,
    or an ASOF JOIN on `valid_from`). History starts at the first capture: the first version of a key is valid
    from the beginning of time (what the platform knew then stands in for everything before), so with a single
    version (files mode, nothing changed) every as-of join gives exactly the current attributes. The newest
    version is valid until the end of time; a deleted customer's last version keeps its attributes (`is_deleted`).
#}

with

versions as (

    select * from {{ ref('stg_customer_versions') }}

),

numbered as (

    select
        *,
        row_number() over by_time as version_number,
        lead(recorded_from) over by_time as next_recorded_from

    from versions
    window by_time as (partition by customer_id order by recorded_from)

),

final as (

    select
        * exclude (next_recorded_from),
        case when version_number = 1 then cast('-infinity' as timestamptz) else recorded_from end as valid_from,
        coalesce(next_recorded_from, cast('infinity' as timestamptz)) as valid_to,
        next_recorded_from is null as is_current,
        -- When the platform could first know this version (a feature row that reads it is no older): its load,
        -- or dbt's deletion record's capture. NULL for the first version, known for as long as history goes.
        case when version_number > 1 then greatest(loaded_at, recorded_from) end as known_from

    from numbered

)

select * from final
