{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- Field-level problems a specialist can fix, naming the file, row and field: invalid or placeholder
-- phones, e-mails and ids, names with no letters, addresses that name no known place.
with records as (
    select record_id, source_system, source_file, source_row from {{ ref('int_leads_unioned') }}
    where {{ only_pending_records() }}
),

contact_issues as (
    select record_id, field, raw_value, status, issue
    from {{ ref('int_lead_contacts') }}
    where status <> 'valid' and {{ only_pending_records() }}
),

other_issues as (
    select record_id, 'name' as field, name_original as raw_value, 'invalid' as status,
        '姓名中没有文字 (name has no letters or characters)' as issue
    from {{ ref('int_leads_standardised') }}
    where name_original is not null and name is null and {{ only_pending_records() }}
    union all
    select record_id, 'address', address, 'invalid', '地址中找不到唯一的省市区 (no province, city or district found, or the name is ambiguous)'
    from {{ ref('int_leads_standardised') }}
    where {{ only_pending_records() }} and address is not null and province is null and city is null and district is null
)

select r.record_id, r.source_system, r.source_file, r.source_row, i.field, i.raw_value, i.status, i.issue
from (select * from contact_issues union all select * from other_issues) as i
join records as r on r.record_id = i.record_id
