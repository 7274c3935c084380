-- depends_on: {{ ref('cn_divisions') }}
-- Province / city / district for each distinct (province, city, district, address) combination.
-- Explicit columns win; otherwise up to three leading division names are read off the address
-- ("广东深圳南山区科技园", "北京市朝阳区..."), and missing parents are filled from the divisions list.
-- An ambiguous name (朝阳区 is in Beijing and Changchun) is resolved by its parent, or left empty.
{{ config(unique_key='place_key') }}
with places as (
    select distinct {{ place_key() }} as place_key, province, city, district, address
    from {{ ref('int_leads_unioned') }}
    where {{ only_new_values(place_key(), 'place_key') }}
),

-- Every name by which a division may be written: full name, and short name for provinces and cities.
division_names as (
    select name as token, level, province, city, district from {{ ref('cn_divisions') }}
    union
    select short_name, level, province, city, district from {{ ref('cn_divisions') }}
    where level in ('province', 'city') and length(short_name) >= 2
),

-- Peel up to three division names off the front of the address (longest name first, so 青岛市 then 市南区).
-- Each regex runs once per distinct place; the rest of the address is cut by the token's length.
rest0 as (
    select place_key, coalesce(address, '') as rest from places
),

token1 as (
    select place_key, rest, regexp_extract(rest, '{{ division_token_pattern() }}', 1) as t1 from rest0
),

-- "上海市上海市浦东新区": a municipality written as province and city is read once.
token1_rest as (
    select place_key, t1,
        ltrim(case when t1 <> '' and starts_with(ltrim(substr(rest, length(t1) + 1)), regexp_replace(t1, '(省|市)$', ''))
                   then regexp_replace(substr(ltrim(substr(rest, length(t1) + 1)), length(regexp_replace(t1, '(省|市)$', '')) + 1), '^(省|市)', '')
                   else substr(rest, length(t1) + 1) end) as rest
    from token1
),

token2 as (
    select place_key, t1, rest, regexp_extract(rest, '{{ division_token_pattern() }}', 1) as t2 from token1_rest
),

token3 as (
    select place_key, t1, t2, regexp_extract(ltrim(substr(rest, length(t2) + 1)), '{{ division_token_pattern() }}', 1) as t3
    from token2
),

address_tokens as (
    select place_key, 1 as pos, nullif(t1, '') as token from token3
    union all
    select place_key, 2, nullif(t2, '') from token3
    union all
    select place_key, 3, nullif(t3, '') from token3
),

address_matches as (
    select a.place_key, a.pos, d.*, case d.level when 'province' then 1 when 'city' then 2 else 3 end as level_rank
    from address_tokens as a
    join division_names as d on d.token = a.token
),

ranks_at as (
    select place_key, pos, min(level_rank) as top_rank, max(level_rank) as bottom_rank
    from address_matches
    group by place_key, pos
),

explicit_tokens as (
    select place_key, 'province' as level, unnest([province, province || '省', province || '市']) as token
    from places where province is not null
    union all
    select place_key, 'city', unnest([city, city || '市']) from places where city is not null
    union all
    select place_key, 'district', district from places where district is not null
),

candidates as (
    select e.place_key, 'explicit' as origin, d.*
    from explicit_tokens as e
    join division_names as d on d.token = e.token and d.level = e.level
    union all
    -- An address names places from the top down: a token counts only below the one before it, so the
    -- 中山 of "南山区中山路" is a street, not 中山市.
    select m.place_key, 'address', m.token, m.level, m.province, m.city, m.district
    from address_matches as m
    left join ranks_at as r1 on r1.place_key = m.place_key and r1.pos = 1
    left join ranks_at as r2 on r2.place_key = m.place_key and r2.pos = 2
    where m.pos = 1
       or (m.pos = 2 and r1.top_rank < m.level_rank)
       or (m.pos = 3 and r1.top_rank < r2.bottom_rank and r2.top_rank < m.level_rank)
),

-- Province: the explicit one if it is unambiguous, else the one the address names.
province_choice as (
    select place_key,
        coalesce(
            case when count(distinct province) filter (where level = 'province' and origin = 'explicit') = 1
                 then any_value(province) filter (where level = 'province' and origin = 'explicit') end,
            case when count(distinct province) filter (where level = 'province') = 1
                 then any_value(province) filter (where level = 'province') end
        ) as province
    from candidates
    group by place_key
),

-- City: within the chosen province; a municipality is its own city.
city_choice as (
    select c.place_key,
        coalesce(
            case when count(distinct c.city) filter (where c.level = 'city' and c.origin = 'explicit') = 1
                 then any_value(c.city) filter (where c.level = 'city' and c.origin = 'explicit') end,
            case when count(distinct c.city) filter (where c.level = 'city') = 1
                 then any_value(c.city) filter (where c.level = 'city') end,
            case when any_value(p.province) in ('北京市', '上海市', '天津市', '重庆市') then any_value(p.province) end
        ) as city
    from candidates as c
    left join province_choice as p on p.place_key = c.place_key
    where p.province is null or c.province = p.province
    group by c.place_key
),

-- District: within the chosen city (or province); kept only when that leaves exactly one.
district_choice as (
    select c.place_key,
        case when count(distinct (c.city, c.district)) = 1 then any_value(c.district) end as district,
        case when count(distinct (c.city, c.district)) = 1 then any_value(c.city) end as city,
        case when count(distinct (c.city, c.district)) = 1 then any_value(c.province) end as province
    from candidates as c
    left join province_choice as p on p.place_key = c.place_key
    left join city_choice as k on k.place_key = c.place_key
    where c.level = 'district'
      and (p.province is null or c.province = p.province)
      and (k.city is null or c.city = k.city)
    group by c.place_key
)

select
    places.place_key,
    coalesce(p.province, d.province, parent.province) as province_std,
    coalesce(k.city, d.city) as city_std,
    d.district as district_std
from places
left join province_choice as p on p.place_key = places.place_key
left join city_choice as k on k.place_key = places.place_key
left join district_choice as d on d.place_key = places.place_key
left join {{ ref('cn_divisions') }} as parent
    on parent.level = 'city' and parent.name = coalesce(k.city, d.city)
