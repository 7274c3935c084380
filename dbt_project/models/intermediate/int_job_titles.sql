-- Each distinct job title mapped to a canonical title by the first (lowest priority number) matching rule.
{{ config(unique_key='job_title') }}
with titles as (
    select distinct job_title from {{ ref('int_leads_unioned') }}
    where job_title is not null and {{ only_new_values('job_title') }}
),

matches as (
    select
        t.job_title,
        r.canonical_title,
        row_number() over (partition by t.job_title order by r.priority, r.canonical_title) as rank
    from titles as t
    join {{ ref('job_titles') }} as r
        on regexp_matches(lower(t.job_title), r.pattern)
)

select t.job_title, m.canonical_title as job_title_canonical
from titles as t
left join matches as m on m.job_title = t.job_title and m.rank = 1
