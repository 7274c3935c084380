-- depends_on: {{ ref('cn_divisions') }}
-- depends_on: {{ ref('cn_division_aliases') }}
-- Province / city / district for each distinct (province, city, district, address) combination.
-- Division names (full, short, aliases: macro division_names) are read off the front of each cell, the
-- explicit columns first and then the address ("中国 广东深圳南山区科技园", "地址:北京市朝阳区...", "凉山州宁南县"),
-- skipping 中国, postcodes, labels and separators; a name followed by a street word (长春路615号) is a street.
-- The reading that makes them one place, each name inside or above the one before it, is kept. A name that
-- fits two places (朝阳区 is in Beijing and Changchun) is resolved by its parent, or left empty. Parents come
-- from the divisions seed. Vectorised: every step is one pass over the distinct places.
{{ config(unique_key='place_key') }}
{%- set steps = 4 -%}  {#- names read off one cell at most: 上海 上海市 浦东新区 in an address -#}
with recursive places as (
    select distinct {{ place_key() }} as place_key, province, city, district, address
    from {{ ref('int_leads_unioned') }}
    where {{ only_new_values(place_key(), 'place_key') }}
),

division_names as (
    {{ division_names() }}
),

division_tokens as (
    select distinct token, length(token) as n from division_names
),

-- Every place cell, numbered in column order: the explicit columns first, then the address.
cells0 as (
    select place_key, 1 as cell, province as rest from places where province is not null
    union all
    select place_key, 2, city from places where city is not null
    union all
    select place_key, 3, district from places where district is not null
    union all
    select place_key, 4, address from places where address is not null
),
{%- for step in range(1, steps + 1) %}

-- Step {{ step }}: the longest division name at the front of each cell's rest, after what is no place
-- (place_skip_pattern), found by looking its prefixes up (a hash join, no regex over all the names).
found{{ step }} as (
    select p.place_key, p.cell, p.rest, p.skipped, max(length(p.prefix)) as n
    from (
        select place_key, cell, rest, skipped,
            unnest(list_transform(range(2, least({{ division_name_max_length() }}, length(rest) - skipped) + 1),
                                  n -> substr(rest, skipped + 1, n))) as prefix
        from (
            select *, length(regexp_extract(rest, '{{ place_skip_pattern() }}', 0)) as skipped
            from cells{{ step - 1 }}
        )
    ) as p
    join division_tokens as t on t.token = p.prefix
    group by all
),

read{{ step }} as materialized (
    select place_key, cell, token, after, {{ is_street('token', 'after') }} as street
    from (
        select place_key, cell, substr(rest, skipped + 1, n) as token, substr(rest, skipped + n + 1) as after
        from found{{ step }}
    )
),

-- A street's name (长春路615号) ends the reading of its cell.
cells{{ step }} as (
    select place_key, cell, after as rest from read{{ step }} where not street and after <> ''
),
{%- endfor %}

-- Every name read, numbered in reading order: the cells in column order, each from its front.
tokens as (
    select place_key, token, row_number() over (partition by place_key order by cell, step) as pos
    from (
        {%- for step in range(1, steps + 1) %}
        select place_key, cell, {{ step }} as step, token from read{{ step }} where not street
        {{- '\n        union all' if not loop.last }}
        {%- endfor %}
    )
),

candidates as (
    select t.place_key, t.pos, d.adcode,
        any_value(case d.level when 'province' then 1 when 'city' then 2 else 3 end) as rank,
        any_value(d.province) as province, any_value(d.city) as city, any_value(d.district) as district,
        bool_and(d.needs_parent) as needs_parent
    from tokens as t
    join division_names as d on d.token = t.token
    group by all
),

-- The readings: each name in turn is the place so far (the same name again: 上海上海市), a place above it
-- (深圳 in a city cell, then 广东省深圳市 in the address) or a place inside it, which becomes the place so far
-- (depth counts the steps down). A reading ends at the first name that fits none of them, so the 长春 of
-- "北京朝阳区长春桥" is not read. A district's short name (南山) needs a place above it read before it.
readings(place_key, pos, adcode, rank, province, city, district, depth) as (
    select place_key, pos, adcode, rank, province, city, district, 1
    from candidates
    where pos = 1 and not needs_parent
    union
    select place_key, n_pos,
        case when down then n_adcode else adcode end,
        case when down then n_rank else rank end,
        province,
        case when down then n_city else city end,
        case when down then n_district else district end,
        depth + down::int
    from (
        select r.*, n.pos as n_pos, n.adcode as n_adcode, n.rank as n_rank, n.city as n_city,
            n.district as n_district,
            -- inside the place so far: in its province and (if that is a city) its city
            n.rank > r.rank and n.province = r.province and (r.rank <> 2 or n.city = r.city) as down,
            -- the same place, or one above it (not for a district's short name)
            not n.needs_parent and (n.adcode = r.adcode
                or (n.rank < r.rank and n.province = r.province and (n.rank <> 2 or n.city = r.city))) as up
        from readings as r
        join candidates as n on n.place_key = r.place_key and n.pos = r.pos + 1
    )
    where down or up
),

-- The best readings: the ones that read the most names, then go deepest, then (for one name that is two
-- places, 吉林 or 海南) the highest place.
best as (
    select *
    from readings
    qualify rank() over (partition by place_key order by pos desc, depth desc, rank) = 1
),

-- A level is kept only when every best reading agrees on it (and on the levels above).
resolved as (
    select place_key,
        case when count(distinct province) = 1 then any_value(province) end as province,
        case when count(distinct province) = 1 and count(distinct city) = 1 and count(city) = count(*)
             then any_value(city) end as city,
        case when count(distinct province) = 1 and count(distinct city) = 1 and count(city) = count(*)
                  and count(distinct district) = 1 and count(district) = count(*)
             then any_value(district) end as district
    from best
    group by place_key
)

select
    places.place_key,
    r.province as province_std,
    -- a municipality is its own city
    coalesce(r.city, case when r.province in ('北京市', '上海市', '天津市', '重庆市') then r.province end) as city_std,
    r.district as district_std
from places
left join resolved as r on r.place_key = places.place_key
