-- What `customers_snapshot` records of `raw.customers` (macros/snapshot_input.sql).
{{ snapshot_input('customers', ['customer_id', 'created_at', 'country', 'card_type', 'birth_year']) }}
