{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- Accepted lead records: one row per input row that can be a lead, all fields standardised.
select * exclude (rejection_reason, rejection_field)
from {{ ref('int_leads_standardised') }}
where rejection_reason is null and {{ only_pending_records() }}
