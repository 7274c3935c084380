{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- Library records that cannot be a lead, with the reason. Files and rows refused at import (unreadable
-- files, ragged rows, totals lines) never become records: the import log in the library keeps them, and
-- each file's receipt lists them. field names the field the rejection concerns where there is one (an
-- invalid mobile that was the row's only contact: mobile), else null (an empty row); every problem of
-- every field is in lead_field_issues.
select
    record_id,
    source_system,
    source_file,
    source_row,
    rejection_field as field,
    rejection_reason as reason
from {{ ref('int_leads_standardised') }}
where rejection_reason is not null and {{ only_pending_records() }}
