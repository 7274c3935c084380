-- depends_on: {{ ref('name_honorifics') }}
{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- Every lead record with its canonical fields standardised, and a rejection reason where it cannot be a lead.
with records as (
    select *, {{ place_key() }} as place_key from {{ ref('int_leads_unioned') }}
    where {{ only_pending_records() }}
),

-- Names repeat (a million records hold a few hundred thousand): each distinct name is cleaned and given its
-- pinyin once, a Python UDF, and joined back.
names as (
    select name_original, name, pinyin_key(name) as name_pinyin
    from (
        select name as name_original, {{ clean_person_name('name') }} as name
        from (select distinct name from records where name is not null)
    )
),

-- First occurrence order of each distinct valid value, per record and field.
valid_contacts as (
    select record_id, field, value, min(source_field = 'landline')::int * 100 + min(position) as rank
    from {{ ref('int_lead_contacts') }}
    where status = 'valid' and {{ only_pending_records() }}
    group by record_id, field, value
),

-- Each list in first-occurrence order: sorted after aggregation (list_sort of (rank, value) pairs), as an
-- ordered aggregate (list(... order by ...)) sorts per group and costs twenty seconds at a million records.
contact_lists as (
    select
        record_id,
        list_transform(list_sort(list({'rank': rank, 'value': value}) filter (where field = 'mobile')), c -> c.value) as mobiles,
        list_transform(list_sort(list({'rank': rank, 'value': value}) filter (where field = 'landline')), c -> c.value) as landlines,
        list_transform(list_sort(list({'rank': rank, 'value': value}) filter (where field = 'email')), c -> c.value) as emails,
        any_value(value) filter (where field = 'wechat') as wechat,
        any_value(value) filter (where field = 'qq') as qq,
        any_value(value) filter (where field = 'douyin') as douyin,
        any_value(value) filter (where field = 'kuaishou') as kuaishou
    from valid_contacts
    group by record_id
),

contact_issues as (
    select
        record_id,
        count(*) as contact_issue_count,
        -- the field a specialist would fix first: the column a bad contact was typed in
        arg_min(field, case field when 'mobile' then 1 when 'email' then 2 when 'wechat' then 3 when 'qq' then 4
                                  when 'landline' then 5 when 'douyin' then 6 when 'kuaishou' then 7 else 8 end)
            as contact_issue_field
    from {{ ref('int_lead_contacts') }}
    where status <> 'valid' and {{ only_pending_records() }}
    group by record_id
),

standardised as (
    select
        r.record_id,
        r.source_system,
        r.source_file,
        r.source_row,
        r.ingested_at,
        r.first_import_id,
        -- when the library first saw the record (the import that first wrote it), however often it was
        -- re-read, updated or retired and brought back since
        imp.imported_at as first_ingested_at,
        n.name,
        r.name as name_original,
        coalesce(c.mobiles, []) as mobiles,
        c.mobiles[1] as mobile,
        coalesce(c.landlines, []) as landlines,
        c.landlines[1] as landline,
        coalesce(c.emails, []) as emails,
        c.emails[1] as email,
        c.wechat,
        c.qq,
        c.douyin,
        c.kuaishou,
        r.company,
        co.company_core,
        r.job_title,
        t.job_title_canonical,
        a.province_std as province,
        a.city_std as city,
        a.district_std as district,
        r.address,
        -- The street part ("科技园路12号"): whatever follows the last 省/市/区/县/旗 near the start.
        nullif(trim(regexp_replace(r.address, '^.{0,13}[省市区县旗]', '')), '') as street_address,
        r.source,
        r.owner,
        r.updated_at,
        r.created_at,
        coalesce(i.contact_issue_count, 0) as contact_issue_count,
        i.contact_issue_field,
        r.extra_attributes,
        n.name_pinyin
    from records as r
    left join contact_lists as c on c.record_id = r.record_id
    left join contact_issues as i on i.record_id = r.record_id
    left join {{ ref('int_company_names') }} as co on co.company = r.company
    left join {{ ref('int_job_titles') }} as t on t.job_title = r.job_title
    left join {{ ref('int_lead_addresses') }} as a on a.place_key = r.place_key
    left join {{ source('raw', 'library_imports') }} as imp on imp.import_id = r.first_import_id
    left join names as n on n.name_original = r.name
)

select
    * exclude (contact_issue_field),
    -- The field a rejection concerns, where one does: the contact given but not valid (mobile first, then
    -- e-mail, WeChat, QQ, landline, Douyin, Kuaishou), else a name with no letters. A row with nothing in
    -- it, or with only fields that cannot make a lead (an address, a title), concerns no one field: null.
    case when rejection_reason like '无姓名%'
         then coalesce(contact_issue_field, case when name_original is not null then 'name' end)
    end as rejection_field
from (
    select
        standardised.*,
        case
            when name_original is null and company is null and address is null and job_title is null
                 and mobile is null and landline is null and email is null and wechat is null and qq is null
                 and douyin is null and kuaishou is null and contact_issue_count = 0
                then '空行 (empty row: every field blank or a placeholder)'
            when name is null and company is null and mobile is null and landline is null and email is null
                 and wechat is null and qq is null and douyin is null and kuaishou is null
                then '无姓名、公司或有效联系方式 (no name, company or valid contact)'
        end as rejection_reason
    from standardised
) as judged
