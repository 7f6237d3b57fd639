-- What `merchants_snapshot` records of `raw.merchants` (macros/snapshot_input.sql).
{{ snapshot_input('merchants', ['merchant_id', 'merchant_name', 'category_code', 'category', 'country', 'created_at']) }}
