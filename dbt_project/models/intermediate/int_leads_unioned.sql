-- All staged lead rows, whatever system they came from.
select * from {{ ref('stg_raw__warehouse_leads') }}
union all by name
select * from {{ ref('stg_raw__inbox_leads') }}
