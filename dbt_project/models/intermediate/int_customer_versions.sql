{#
    One row per customer version with the interval it was valid in, for as-of joins (`valid_from <= t < valid_to`,
    or an ASOF JOIN on `valid_from`). History starts at the first capture: the first version of a key is valid
    from the beginning of time (what the platform knew then stands in for everything before), so with a single
    version (files mode, nothing changed) every as-of join gives exactly the current attributes. The newest
    version is valid until the end of time; a deleted customer's last version keeps its attributes (`is_deleted`).
#}

{{ version_intervals(ref('stg_customer_versions'), 'customer_id') }}
