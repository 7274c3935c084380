{% macro lead_text_fields() -%}
    {{- return(['name', 'mobile', 'landline', 'email', 'wechat', 'qq', 'douyin', 'kuaishou', 'company',
                'job_title', 'province', 'city', 'district', 'address', 'source', 'owner']) -}}
{%- endmacro %}

{% macro parse_lead_timestamp(expr) -%}
    {#- Dates as people type them; zoned timestamps (ISO 8601 with an offset or Z) converted to Beijing
        time, the zone the naive ones are typed in; or an Excel serial (days since 1899-12-30, the
        fraction is the time of day). -#}
    coalesce(
        try_strptime({{ expr }}, ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M', '%Y-%m-%d', '%Y/%m/%d %H:%M:%S',
                                  '%Y/%m/%d %H:%M', '%Y/%m/%d', '%Y.%m.%d', '%Y年%m月%d日', '%Y%m%d',
                                  '%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%dT%H:%M:%S.%f']),
        timezone('Asia/Shanghai', try_strptime(regexp_replace({{ expr }}, '(Z|UTC)$', '+0000'),
                                  ['%Y-%m-%dT%H:%M:%S%z', '%Y-%m-%d %H:%M:%S%z', '%Y-%m-%dT%H:%M:%S.%f%z',
                                   '%Y-%m-%d %H:%M:%S.%f%z', '%Y-%m-%dT%H:%M%z'])),
        case when regexp_full_match({{ expr }}, '[1-9][0-9]{4}(\.[0-9]+)?')
             then timestamp '1899-12-30' + to_seconds(round(try_cast({{ expr }} as double) * 86400)::bigint) end
    )
{%- endmacro %}

{% macro stage_raw_leads(source_relation, where='true') %}
{#- Every text field half-width, squished, junk placeholders nulled; lineage kept as it came.
    `where` filters the rows as they are read, before any of that work. -#}
with squished as (
    select
        *,
        {%- for field in lead_text_fields() %}
        {{ squish(field) }} as clean_{{ field }},
        {%- endfor %}
        {{ squish('updated_at') }} as clean_updated_at,
        {{ squish('created_at') }} as clean_created_at
    from {{ source_relation }}
    where {{ where }}
)

select
    record_id,
    source_system,
    first_import_id,
    source_file,
    source_row::bigint as source_row,
    ingested_at,
    {%- for field in lead_text_fields() %}
    {{ null_if_junk('clean_' ~ field) }} as {{ field }},
    {%- endfor %}
    -- when the record was last updated (更新时间), and when it was created or registered (创建时间, 登记时间):
    -- two columns, never one standing in for the other
    {{ parse_lead_timestamp('clean_updated_at') }} as updated_at,
    {{ parse_lead_timestamp('clean_created_at') }} as created_at,
    -- The untouched contact text, so a field issue can show what the file really said.
    mobile as raw_mobile,
    landline as raw_landline,
    email as raw_email,
    extra_attributes
from squished
{% endmacro %}
