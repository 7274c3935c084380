-- depends_on: {{ ref('junk_values') }}, {{ ref('cn_numbering_plan') }}
{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
-- One row per contact value found on a record (phones, e-mails, social ids), standardised and judged.
-- status: valid | invalid | junk; issue says why, in words a specialist can act on.
with records as (
    select record_id, mobile, landline, email, wechat, qq, douyin, kuaishou
    from {{ ref('int_leads_unioned') }}
    where {{ only_pending_records() }}
),

-- A phone cell may hold several numbers: "138...; 0755-...", "138.../139...", "138... 或 139...", or two
-- whole numbers side by side ("13800138001 0755-88886666"; but "138 0013 8001" is one number).
phone_cells as (
    select record_id, 'mobile' as source_field, string_split_regex(mobile, '\s*(?:[,;/、|，；]|或|和|及|\bor\b)+\s*') as pieces from records where mobile is not null
    union all
    select record_id, 'landline', string_split_regex(landline, '\s*(?:[,;/、|，；]|或|和|及|\bor\b)+\s*') from records where landline is not null
),

phone_split as (
    select record_id, source_field, trim(unnest(pieces)) as piece, unnest(range(1, len(pieces) + 1)) as cell_position
    from phone_cells
),

phone_pieces as (
    select
        record_id, source_field, raw_value,
        row_number() over (partition by record_id, source_field order by cell_position, part_position) as position
    from (
        select record_id, source_field, cell_position, unnest(parts) as raw_value, unnest(range(1, len(parts) + 1)) as part_position
        from (
            select *,
                case when len(string_split(piece, ' ')) > 1
                          and list_bool_and(list_transform(string_split(piece, ' '), p -> length(regexp_replace(p, '[^0-9]', '', 'g')) >= 7))
                     then string_split(piece, ' ')
                     -- Two mobiles written in groups ("138 0013 8001 139 0013 9002"): 22 digits, each half a mobile.
                     when regexp_full_match(regexp_replace(piece, '[\s\-]', '', 'g'), '1[3-9][0-9]{9}1[3-9][0-9]{9}')
                     then [left(regexp_replace(piece, '[\s\-]', '', 'g'), 11), right(regexp_replace(piece, '[\s\-]', '', 'g'), 11)]
                     else [piece] end as parts
            from phone_split
            where piece <> ''
        )
    )
),

phone_text as (
    select
        *,
        -- Excel's scientific notation: "1.3800138001E10" holds every digit; "1.38123E+10" kept only six
        -- and Excel rounded the rest away, so the number cannot be recovered.
        regexp_full_match(raw_value, '[0-9]\.[0-9]+[eE]\+?[0-9]+')
            and length(regexp_extract(raw_value, '\.([0-9]+)', 1)) < try_cast(regexp_extract(raw_value, '[eE]\+?([0-9]+)', 1) as int)
            as digits_lost,
        case
            when regexp_full_match(raw_value, '[0-9]\.[0-9]+[eE]\+?[0-9]+')
                then try_cast(try_cast(raw_value as double) as hugeint)::varchar
            else regexp_replace(raw_value, '\.0+$', '')
        end as unfloated
    from phone_pieces
),

-- An extension after 转 / 分机 / ext / x / #, or after a last dash once the number before it is complete
-- ("021 6123 4567-801"); "(0)" after the country code is the trunk prefix people copy from cards.
phone_extensions as (
    select
        *,
        nullif(regexp_extract(unfloated, '(?:转|分机|ext\.?|x|#)\s*([0-9]{1,6})\s*$', 1), '') as marked_extension,
        regexp_replace(regexp_replace(unfloated, '(?:转|分机|ext\.?|x|#)\s*[0-9]{1,6}\s*$', ''), '\(\s*0\s*\)', '') as body
    from phone_text
),

phone_extension_flags as (
    -- a number that ends in "-NNN" with no marked extension is read twice (see phone_readings)
    select *, coalesce(marked_extension is null and regexp_matches(body, '[0-9]{3}.*-\s*[0-9]{1,5}\s*$'), false) as read_twice
    from phone_extensions
),

phone_readings as (
    -- Each number read whole, and (where it ends in "-NNN") read with that group as an extension.
    select *, marked_extension as extension, body as number_text from phone_extension_flags
    union all
    select *, regexp_extract(body, '-\s*([0-9]{1,5})\s*$', 1), regexp_replace(body, '-\s*[0-9]{1,5}\s*$', '')
    from phone_extension_flags
    where read_twice
),

phone_national as (
    select
        *,
        regexp_replace(number_text, '[^0-9]', '', 'g') as digits,
        regexp_replace(number_text, '[^0-9+]', '', 'g') as dialled,
        case
            when regexp_replace(number_text, '[^0-9+]', '', 'g') like '+86%' then substr(regexp_replace(number_text, '[^0-9+]', '', 'g'), 4)
            when regexp_replace(number_text, '[^0-9+]', '', 'g') like '0086%' then substr(regexp_replace(number_text, '[^0-9+]', '', 'g'), 5)
            -- "86-138..." / "86 138..." / "8613812345678": a country code typed without the plus.
            when regexp_full_match(regexp_replace(number_text, '[^0-9+]', '', 'g'), '861[0-9]{10}') then substr(regexp_replace(number_text, '[^0-9+]', '', 'g'), 3)
            when regexp_matches(number_text, '^\s*86[\s\-()]') then substr(regexp_replace(number_text, '[^0-9+]', '', 'g'), 3)
            when regexp_replace(number_text, '[^0-9+]', '', 'g') similar to '(\+|00).*' then null  -- another country
            else regexp_replace(number_text, '[^0-9+]', '', 'g')
        end as dialled_national
    from phone_readings
),

phone_cn as (
    select
        *,
        -- The national significant number: without the trunk 0 ("0755...", "013812345678").
        case when dialled_national like '0%' then substr(dialled_national, 2) else dialled_national end as national,
        -- A landline needs its area code: the trunk 0, the country code, or ten digits or more.
        dialled_national like '0%' or dialled <> dialled_national or length(dialled_national) >= 10 as has_area_code
    from phone_national
),

phone_typed as (
    select
        *,
        case
            when national is null then null
            when regexp_full_match(national, {{ numbering_plan_pattern(['mobile']) }}) then 'mobile'
            when has_area_code then {{ cn_number_type('national') }}
        end as cn_type
    from phone_cn
),

-- Numbers dialled with another country code: phonenumbers judges each distinct one (few per run).
phones_abroad as (
    select dialled, judge_number_abroad(dialled) as verdict
    from (select distinct dialled from phone_typed where national is null and regexp_full_match(dialled, '(\+|00)[1-9][0-9]{5,16}'))
),

phone_judged as (
    select
        p.*,
        case when p.national is null then 'abroad' end as abroad,
        coalesce(p.cn_type, split_part(a.verdict, '|', 1)) as number_type,
        case when p.cn_type is not null then 'CN' else nullif(split_part(a.verdict, '|', 2), '') end as region,
        case when p.cn_type is not null then '+86' || p.national else nullif(split_part(a.verdict, '|', 3), '') end as e164_number,
        case
            when p.digits in ({{ junk_values('phone') }}) or p.national in ({{ junk_values('phone') }})
                or p.digits in ({{ junk_values('any') }}) then 'junk'
            when length(p.digits) >= 6 and length(replace(p.digits, left(p.digits, 1), '')) = 0 then 'junk'
            when p.digits_lost then 'invalid'
            when p.cn_type is not null or a.verdict is not null then 'valid'
            else 'invalid'
        end as status
    from phone_typed as p
    left join phones_abroad as a on a.dialled = p.dialled and p.national is null
),

-- One reading per number: the whole text if it is a number, else the one with the dash extension. Only the
-- numbers read twice need choosing (a window over every number costs seconds at a million records).
phone_best as (
    select * from phone_judged where not read_twice
    union all
    select * from phone_judged where read_twice
    qualify row_number() over (
        partition by record_id, source_field, position
        order by (status = 'valid') desc, (number_text = body) desc
    ) = 1
),

phones as (
    select
        record_id,
        case
            when number_type = 'mobile' then 'mobile'
            -- A number that may be either (North America) goes where the file put it.
            when number_type = 'fixed_line_or_mobile' then source_field
            else 'landline'
        end as field,
        source_field,
        position,
        raw_value,
        status,
        number_type,
        region,
        -- The extension belongs to a landline; a mobile has none, so it is dropped there.
        e164_number || case when number_type <> 'mobile' then coalesce(';ext=' || extension, '') else '' end as e164,
        case
            when digits_lost then 'Excel 用科学计数法显示时丢失了后几位数字，请把该列设为文本后重新导出 (digits lost: Excel rounded the number in scientific notation; export the column as text)'
            when abroad is not null then '不是有效的境外号码 (not a valid number in its country''s numbering plan)'
            when regexp_full_match(national, '1[0-9]{10}') then '不是有效的手机号段 (no such mobile prefix in the numbering plan)'
            when national like '1%' and length(national) between 9 and 12 and not has_area_code then '手机号位数不对 (mobile has the wrong number of digits)'
            when not has_area_code and regexp_full_match(national, '[2-9][0-9]{6,7}') then '座机缺少区号 (landline without area code)'
            when has_area_code and length(national) between 9 and 11 then '区号或号码位数不在编号计划中 (no such area code, or the wrong number of digits for it)'
            when digits = '' then '没有数字 (no digits)'
            else '无法识别的电话号码 (not a recognisable phone number)'
        end as invalid_reason
    from phone_best
),

-- Every address of an e-mail cell, judged like email-validator (macros/emails.sql).
emails as (
    {{ standardise_emails('records', 'email') }}
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
    case status when 'junk' then '占位或测试号码 (placeholder or test number)' when 'invalid' then invalid_reason end as issue,
    case when status = 'valid' then number_type end as number_type,
    case when status = 'valid' then region end as region
from phones

union all

select record_id, field, source_field, position, raw_value, value, status, issue, null as number_type, null as region
from emails

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
    end as issue,
    null as number_type,
    null as region
from (
    select
        *,
        case
            -- A WeChat id may be the mobile it was registered with: a mobile of the numbering plan.
            when field = 'wechat' and regexp_full_match(raw_value, {{ numbering_plan_pattern(['mobile'], '(?:\+?86)?') }}) then '+86' || right(raw_value, 11)
            else raw_value
        end as standard,
        case
            when raw_value in ({{ junk_values('any') }}) then 'junk'
            when field = 'wechat' and (regexp_full_match(raw_value, '[a-z][a-z0-9_\-]{5,19}') or regexp_full_match(raw_value, {{ numbering_plan_pattern(['mobile'], '(?:\+?86)?') }})) then 'valid'
            when field = 'qq' and regexp_full_match(raw_value, '[1-9][0-9]{4,11}') then 'valid'
            when field in ('douyin', 'kuaishou') and length(raw_value) between 2 and 40 then 'valid'
            else 'invalid'
        end as judged
    from socials
)
