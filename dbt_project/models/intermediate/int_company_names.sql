-- depends_on: {{ ref('company_name_words') }}
-- depends_on: {{ ref('cn_divisions') }}
-- Each distinct company name reduced to its core: 北京字节跳动科技有限公司 / 字节跳动(北京)公司 -> 字节跳动.
-- Brackets, legal suffixes, a leading region and trailing industry words go; a core is never shorter
-- than two characters (else the step that shortened it is undone, the region first).
{{ config(unique_key='company') }}
with names as (
    select distinct company from {{ ref('int_leads_unioned') }}
    where company is not null and {{ only_new_values('company') }}
),

folded as (
    select company, lower(regexp_replace(company, '\s+', ' ', 'g')) as step0 from names
),

no_brackets as (
    select *, trim(regexp_replace(step0, '[(\[][^)\]]*[)\]]', '', 'g')) as step1 from folded
),

no_suffix as (
    select *, trim(regexp_replace(step1, '{{ company_word_pattern("legal_suffix", "end") }}', '')) as step2 from no_brackets
),

no_region as (
    select
        *,
        regexp_replace(
            regexp_replace(step2, '{{ company_word_pattern("region", "start") }}', ''),
            '{{ division_token_pattern(for_company=true) }}(省|市)?', ''
        ) as step3
    from no_suffix
),

no_industry as (
    select
        *,
        regexp_replace(step3, '{{ company_word_pattern("industry", "end") }}', '') as step4,
        -- 广州科技有限公司: with the region gone only industry words are left, so the region is the name.
        regexp_replace(step2, '{{ company_word_pattern("industry", "end") }}', '') as step4_with_region
    from no_region
)

select
    company,
    nullif(trim(
        case
            when length(step4) >= 2 then step4
            when length(step4_with_region) >= 2 then step4_with_region
            when length(step3) >= 2 then step3
            when length(step2) >= 2 then step2
            else step1
        end
    ), '') as company_core
from no_industry
