{#- E-mail addresses: split a cell into addresses, judge each like email-validator 2.4.0 (syntax only, no
    deliverability check), give the canonical form. Plain ASCII addresses are judged here by one RE2
    expression; the few others (non-ASCII: 用户@例子.中国, Unicode local parts; punycode: xn--) go to the
    Python UDF email_canonical (pipelines/lib/standardise/emails.py), once per distinct value.

    The product follows email-validator's defaults: dot-atom local part (no quoted local part), a domain
    name (no [IP] literal), no display name, at least one dot, the domain ends in a letter, no
    special-use domain (.arpa .invalid .local .localhost .onion .test). Its own rules on top:
    the whole address is lower-cased (email-validator keeps the local part's case); the local part is at
    most 64 octets (email-validator checks that only in strict mode); a cell may hold several addresses;
    mailto: is dropped; full-width ＠ ．。 were made half-width in staging (﹫ here); placeholders
    (seed junk_values, scope email, or a local part of scope any) are junk, not valid.
    The deliberate differences are listed in tests/reference/emails_differences.yaml. -#}

{% macro email_atext() -%}
    {#- RFC 5322 atext, lower-case (the address is lower-cased first); '' is SQL's quote. -#}
    a-z0-9!#$%&''*+/=?^_`{|}~-
{%- endmacro %}

{% macro email_ascii_pattern() -%}
    {#- email-validator's DOT_ATOM_TEXT @ DOT_ATOM_TEXT_HOSTNAME, with its label length (63), at least one
        dot and a domain ending in a letter. The lengths of the whole and the local part are checked apart. -#}
    [{{ email_atext() }}]+(?:\.[{{ email_atext() }}]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z0-9][a-z0-9-]{0,61})?[a-z]
{%- endmacro %}

{% macro email_special_use_pattern() -%}
    {#- email-validator's SPECIAL_USE_DOMAIN_NAMES (the domain is one of them or under one). -#}
    \.(?:arpa|invalid|local|localhost|onion|test)$
{%- endmacro %}

{% macro split_email_cell(expr) -%}
    {#- The addresses of a cell, in order: split on , ; 、 ， ； and spaces, and on a / that ends a domain
        ('a@x.com/b@y.com', 'a@x.com/备用'), or has a space next to it ('a@x.com / b@y.com'). / is legal in a
        local part ('a+b/c@x.com') but never in a domain, so a / after @domain cannot belong to the address.
        mailto: is dropped. String functions only: a CASE over lists costs more than the whole split.
        A separator at either end leaves an empty piece, dropped by the caller. -#}
    {%- set sep = ',;、，；\\s' -%}
    string_split_regex(
        case
            when contains(lower({{ expr }}), 'mailto:') or {{ expr }} like '%@%/%'
                then regexp_replace(regexp_replace({{ expr }}, 'mailto:', '', 'gi'), '(@[^@/{{ sep }}]*)/', '\1 ', 'g')
            -- A space inside what looks like one address ("zhang wei@qq.com") does not split it: keeping
            -- "wei@qq.com" would invent an address. It becomes the control character U+001F (shown as a space
            -- again in raw_value), so the piece stays whole and is judged invalid, as email-validator judges it.
            when regexp_matches({{ expr }}, '[^@{{ sep }}]\s+[^{{ sep }}]*@')
                then regexp_replace({{ expr }}, '(^|[{{ sep }}])([^@/{{ sep }}]+)\s+([^{{ sep }}]*@)', '\1\2' || chr(31) || '\3', 'g')
            else {{ expr }}
        end,
        '(?:[{{ sep }}]/?|/[{{ sep }}])+'
    )
{%- endmacro %}

{% macro standardise_emails(relation, column='email') %}
{#- One row per address found in `column` of `relation`, in int_lead_contacts' shape: record_id, field,
    source_field, position, raw_value, value (canonical, valid only), status (valid | invalid | junk), issue. -#}
select
    record_id, 'email' as field, 'email' as source_field, position, raw_value,
    case when status = 'valid' then canonical end as value,
    status,
    case status
        when 'junk' then '占位或测试邮箱 (placeholder or test e-mail)'
        when 'invalid' then '邮箱格式不正确' || coalesce('：' || reason[1] || ' (not a valid e-mail address: ' || reason[2] || ')', ' (not a valid e-mail address)')
    end as issue
from (
    select
        *,
        -- Only for invalid addresses (CASE evaluates a branch only on its rows).
        case when status = 'invalid' then
            case
                when not contains(lowered, '@') then ['缺少 @', 'no @ sign']
                when lowered like '%@%@%' then ['有多个 @', 'more than one @ sign']
                when lowered like '@%' or lowered like '%@' then ['@ 前或 @ 后为空', 'nothing before or after the @']
                when lowered like '"%' then ['不接受带引号的写法', 'a quoted part before the @ is not accepted']
                when strlen(lowered) = length(lowered) and not regexp_full_match(lowered, '[.@{{ email_atext() }}]+')
                    then ['含有不允许的字符（如空格、括号、逗号）', 'a character that is not allowed, such as a space, bracket or comma']
                when contains(lowered, '..') then ['连续的点', 'two dots in a row']
                when lowered like '.%' or lowered like '%.@%' then ['@ 前的部分以点开头或结尾', 'a dot at the start or end of the part before the @']
                when lowered like '%@.%' or lowered like '%.' then ['域名以点开头或结尾', 'a dot at the start or end of the domain']
                when not contains(domain, '.') then ['域名缺少后缀，如 .com', 'the domain has no ending such as .com']
                when regexp_matches(domain, '(?:^|\.)-|-(?:\.|$)') then ['域名的某段以连字符开头或结尾', 'a part of the domain starts or ends with a hyphen']
                when regexp_matches(domain, '[0-9]$') then ['域名后缀不能是数字', 'the domain cannot end in a number']
                when regexp_matches(domain, '{{ email_special_use_pattern() }}') then ['保留域名，不能收信', 'a reserved domain that cannot receive mail']
                when strlen(local_part) > 64 then ['@ 前的部分超过 64 字节', 'the part before the @ is over 64 bytes']
                when strlen(lowered) > 254 then ['超过 254 字节', 'over 254 bytes']
            end
        end as reason
    from (
        select
            *,
            case
                when coalesce(canonical, lowered) in ({{ junk_values('email') }}) or local_part in ({{ junk_values('any') }}) then 'junk'
                when canonical is not null then 'valid'
                else 'invalid'
            end as status
        from (
            select
                *,
                case
                    -- Plain ASCII (the pattern admits nothing else) without punycode: judged here.
                    when regexp_full_match(lowered, '{{ email_ascii_pattern() }}') and not contains(lowered, 'xn--') then
                        case
                            when strpos(lowered, '@') <= 65 and strlen(lowered) <= 254  -- local part <= 64 octets
                                -- neither an R-LDH label ("ab--c": only punycode may have -- there) nor a special-use domain
                                and not regexp_matches('.' || domain, '\.[^.][^.]--|{{ email_special_use_pattern() }}')
                                then lowered
                        end
                    -- Other ASCII (strlen counts bytes, length characters): not valid, the pattern said so.
                    when strlen(lowered) = length(lowered) and not contains(lowered, 'xn--') then null
                    -- Non-ASCII or punycode: email-validator, once per distinct value.
                    else email_canonical(address)
                end as canonical
            from (
                select *, split_part(lowered, '@', 1) as local_part, substr(lowered, strpos(lowered, '@') + 1) as domain
                from (
                    select record_id, position, raw_value, address, lower(address) as lowered
                    from (
                        select record_id, replace(unnest(pieces), chr(31), ' ') as raw_value, unnest(range(1, len(pieces) + 1)) as position,
                            replace(unnest(pieces), '﹫', '@') as address
                        from (select record_id, {{ split_email_cell(column) }} as pieces from {{ relation }} where {{ column }} is not null)
                    )
                    where address <> ''
                )
            )
        )
    )
)
{% endmacro %}
