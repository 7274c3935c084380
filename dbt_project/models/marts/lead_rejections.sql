-- Everything that was not accepted, with the reason: whole files that could not be read, and rows.
select
    source_system,
    source_file,
    null::bigint as source_row,
    null::varchar as field,
    reason
from {{ source('raw', 'ingest_rejections') }}
union all
select
    source_system,
    source_file,
    source_row,
    null::varchar as field,
    rejection_reason as reason
from {{ ref('int_leads_standardised') }}
where rejection_reason is not null
