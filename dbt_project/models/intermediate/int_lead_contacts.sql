-- depends_on: {{ ref('junk_values') }}
{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- One row per contact value found on a record (phones, e-mails, social ids), standardised and judged.
-- status: valid | invalid | junk; issue says why, in words a specialist can act on.
with records as (
    select record_id, mobile, landline, email, wechat, qq, douyin, kuaishou
    from {{ ref('int_leads_unioned') }}
    where {{ only_pending_records() }}
),

-- A phone cell may hold several numbers: "138...; 0755-..." or "138.../139...".
phone_cells as (
    select record_id, 'mobile' as source_field, string_split_regex(mobile, '[,;/、|]+') as pieces from records where mobile is not null
    union all
    select record_id, 'landline', string_split_regex(landline, '[,;/、|]+') from records where landline is not null
),

phone_pieces as (
    select record_id, source_field, trim(unnest(pieces)) as raw_value, unnest(range(1, len(pieces) + 1)) as position
    from phone_cells
),

phone_text as (
    select
        *,
        -- Excel floats ("13800138000.0") and scientific notation ("1.3800138001E10") back to digits.
        case
            when regexp_full_match(raw_value, '[0-9]\.[0-9]+[eE]\+?[0-9]+')
                then try_cast(try_cast(raw_value as double) as hugeint)::varchar
            else regexp_replace(raw_value, '\.0+$', '')
        end as unfloated
    from phone_pieces
    where raw_value <> ''
),

phone_digits as (
    select
        *,
        nullif(regexp_extract(unfloated, '(?:转|分机|ext\.?|x|#)\s*([0-9]{1,6})\s*$', 1), '') as extension,
        regexp_replace(regexp_replace(unfloated, '(?:转|分机|ext\.?|x|#)\s*[0-9]{1,6}\s*$', ''), '[^0-9+]', '', 'g') as dialled
    from phone_text
),

phone_national as (
    select
        *,
        regexp_replace(dialled, '[^0-9]', '', 'g') as digits,
        case
            when dialled like '+86%' then substr(dialled, 4)
            when dialled like '0086%' then substr(dialled, 5)
            -- "86-138..." / "86 138...": a country code typed without the plus.
            when regexp_full_match(dialled, '861[3-9][0-9]{9}') then substr(dialled, 3)
            when regexp_matches(unfloated, '^\s*86[\s\-()]') then substr(dialled, 3)
            when dialled like '+%' or dialled like '00%' then null  -- another country
            else dialled
        end as national
    from phone_digits
),

phones as (
    select
        record_id,
        case
            when national is not null and regexp_full_match(national, '1[3-9][0-9]{9}') then 'mobile'
            else 'landline'
        end as field,
        source_field,
        position,
        raw_value,
        case
            when digits in ({{ junk_values('phone') }}) or national in ({{ junk_values('phone') }})
                or digits in ({{ junk_values('any') }}) then 'junk'
            when length(digits) >= 6 and length(replace(digits, left(digits, 1), '')) = 0 then 'junk'
            when national is null and length(digits) between 8 and 17 then 'valid'
            when regexp_full_match(national, '1[3-9][0-9]{9}') then 'valid'
            -- With the trunk 0: area code 10, 2x or 3 digits, then 7-8 digits; 400/800 service numbers.
            when regexp_full_match(national, '0(10|2[0-9]|[3-9][0-9]{2})[1-9][0-9]{6,7}') then 'valid'
            when regexp_full_match(national, '(10|2[0-9]|[3-9][0-9]{2})[1-9][0-9]{6,7}') and dialled <> national then 'valid'
            when regexp_full_match(national, '[48]00[0-9]{7}') then 'valid'
            else 'invalid'
        end as status,
        case
            when national is null then '+' || regexp_replace(digits, '^00', '')
            when national like '0%' then '+86' || substr(national, 2)
            else '+86' || national
        end || coalesce(';ext=' || extension, '') as e164,
        case
            when national is not null and regexp_full_match(national, '[2-9][0-9]{6,7}') then '座机缺少区号 (landline without area code)'
            when national is not null and regexp_full_match(national, '1[0-9]{10}') then '不是有效的手机号段 (not a valid CN mobile prefix)'
            when national is not null and national like '1%' and length(national) between 9 and 12 then '手机号位数不对 (mobile has the wrong number of digits)'
            when digits = '' then '没有数字 (no digits)'
            else '无法识别的电话号码 (not a recognisable phone number)'
        end as invalid_reason
    from phone_national
),

email_cells as (
    select record_id, string_split_regex(lower(email), '[,;\s]+') as pieces from records where email is not null
),

emails as (
    select
        record_id,
        'email' as field,
        'email' as source_field,
        unnest(range(1, len(pieces) + 1)) as position,
        unnest(pieces) as raw_value
    from email_cells
),

email_judged as (
    select
        record_id, field, source_field, position, raw_value,
        regexp_replace(regexp_replace(raw_value, '^mailto:', ''), '。', '.', 'g') as value
    from emails
    where raw_value <> ''
),

socials as (
    select record_id, 'wechat' as field, lower(replace(wechat, ' ', '')) as raw_value from records where wechat is not null
    union all
    select record_id, 'qq', regexp_replace(qq, '[\s\-]|\.0+$', '', 'g') from records where qq is not null
    union all
    select record_id, 'douyin', lower(replace(douyin, ' ', '')) from records where douyin is not null
    union all
    select record_id, 'kuaishou', lower(replace(kuaishou, ' ', '')) from records where kuaishou is not null
)

select
    -- A valid number goes where it belongs (a mobile typed under 电话 is a mobile); an invalid one stays
    -- under the column it came from, so the issue names the field the specialist has to fix.
    record_id, case when status = 'valid' then field else source_field end as field, source_field, position, raw_value,
    case when status = 'valid' then e164 end as value,
    status,
    case status when 'junk' then '占位或测试号码 (placeholder or test number)' when 'invalid' then invalid_reason end as issue
from phones

union all

select
    record_id, field, source_field, position, raw_value,
    case when judged = 'valid' then value end as value,
    judged as status,
    case judged
        when 'junk' then '占位或测试邮箱 (placeholder or test e-mail)'
        when 'invalid' then '邮箱格式不正确 (not a valid e-mail address)'
    end as issue
from (
    select
        *,
        case
            when value in ({{ junk_values('email') }}) or split_part(value, '@', 1) in ({{ junk_values('any') }}) then 'junk'
            when regexp_full_match(value, '[a-z0-9][a-z0-9._%+\-]*@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}') then 'valid'
            else 'invalid'
        end as judged
    from email_judged
)

union all

select
    record_id, field, field as source_field, 1 as position, raw_value,
    case when judged = 'valid' then standard end as value,
    judged as status,
    case judged
        when 'junk' then '占位或测试账号 (placeholder or test id)'
        when 'invalid' then case field
            when 'wechat' then '微信号格式不正确 (WeChat id: 6-20 letters, digits, _ or -, starting with a letter, or a mobile)'
            when 'qq' then 'QQ号格式不正确 (QQ number: 5-12 digits, not starting with 0)'
            else '账号格式不正确 (not a valid id)'
        end
    end as issue
from (
    select
        *,
        case
            when field = 'wechat' and regexp_full_match(raw_value, '(\+?86)?1[3-9][0-9]{9}') then '+86' || right(raw_value, 11)
            else raw_value
        end as standard,
        case
            when raw_value in ({{ junk_values('any') }}) then 'junk'
            when field = 'wechat' and (regexp_full_match(raw_value, '[a-z][a-z0-9_\-]{5,19}') or regexp_full_match(raw_value, '(\+?86)?1[3-9][0-9]{9}')) then 'valid'
            when field = 'qq' and regexp_full_match(raw_value, '[1-9][0-9]{4,11}') then 'valid'
            when field in ('douyin', 'kuaishou') and length(raw_value) between 2 and 40 then 'valid'
            else 'invalid'
        end as judged
    from socials
)
