-- depends_on: {{ ref('cn_divisions') }}
-- Province / city / district for each distinct (province, city, district, address) combination.
-- Explicit columns win; otherwise up to three leading division names are read off the address
-- ("广东深圳南山区科技园", "北京市朝阳区..."), and missing parents are filled from the divisions list.
-- An ambiguous name (朝阳区 is in Beijing and Changchun) is resolved by its parent, or left empty.
with places as (
    select distinct {{ place_key() }} as place_key, province, city, district, address
    from {{ ref('int_leads_unioned') }}
),

-- Every name by which a division may be written: full name, and short name for provinces and cities.
division_names as (
    select name as token, level, province, city, district from {{ ref('cn_divisions') }}
    union
    select short_name, level, province, city, district from {{ ref('cn_divisions') }}
    where level in ('province', 'city') and length(short_name) >= 2
),

-- Peel up to three division names off the front of the address, dropping a dangling 省/市 after each.
rest0 as (
    select place_key, coalesce(address, '') as rest from places
),

token1 as (
    select place_key, regexp_extract(rest, '{{ division_token_pattern() }}', 1) as t1,
        ltrim(regexp_replace(substr(rest, length(regexp_extract(rest, '{{ division_token_pattern() }}', 1)) + 1), '^(省|市)', '')) as rest
    from rest0
),

token2 as (
    select place_key, t1, regexp_extract(rest, '{{ division_token_pattern() }}', 1) as t2,
        ltrim(regexp_replace(substr(rest, length(regexp_extract(rest, '{{ division_token_pattern() }}', 1)) + 1), '^(省|市)', '')) as rest
    from token1
),

token3 as (
    select place_key, t1, t2, regexp_extract(rest, '{{ division_token_pattern() }}', 1) as t3 from token2
),

candidates as (
    select p.place_key, 'explicit' as origin, d.*
    from places as p
    join division_names as d
        on (d.level = 'province' and d.token in (p.province, p.province || '省', p.province || '市'))
        or (d.level = 'city' and d.token in (p.city, p.city || '市'))
        or (d.level = 'district' and d.token = p.district)
    union all
    select t.place_key, 'address', d.*
    from token3 as t
    join division_names as d on d.token in (nullif(t.t1, ''), nullif(t.t2, ''), nullif(t.t3, ''))
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
