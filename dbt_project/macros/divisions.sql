{% macro division_names(at_compile_time=false) -%}
    {#- Every name by which a division may be written, as a select over the seeds: its full name; its short
        name (广东, 深圳, 凉山, 昆山, 南山); an alias (凉山州, 内蒙). A district's short name (南山, 怀柔, 昆山)
        needs_parent: it counts only after a place above it has been named (广东深圳南山, 北京怀柔, 江苏昆山).
        at_compile_time: for run_query, over the seed tables themselves (in a unit test ref() names a fixture
        that only exists inside the test's query). -#}
    {%- set divisions = seed_relation('cn_divisions') if at_compile_time else ref('cn_divisions') -%}
    {%- set aliases = seed_relation('cn_division_aliases') if at_compile_time else ref('cn_division_aliases') -%}
    select name as token, adcode, level, province, city, district, false as needs_parent from {{ divisions }}
    union all
    select short_name, adcode, level, province, city, district, level = 'district' from {{ divisions }}
    where length(short_name) >= 2 and short_name <> name
    union all
    select a.alias, d.adcode, d.level, d.province, d.city, d.district, false
    from {{ aliases }} as a
    join {{ divisions }} as d on d.adcode = a.adcode
{%- endmacro %}

{% macro seed_relation(name) -%}
    {#- A seed's table, whatever ref() says (in a unit test it names the test's fixture). -#}
    {%- for node in (graph.get('nodes') or {}).values() if node.resource_type == 'seed' and node.name == name -%}
        {{- return(node.relation_name) -}}
    {%- endfor -%}
    {#- A unit test has no graph: the seeds are in the schema reference (dbt_project.yml). -#}
    {{- return(api.Relation.create(database=target.database, schema=generate_schema_name('reference', none),
                                   identifier=name)) -}}
{%- endmacro %}

{% macro division_token_pattern(for_company=false) -%}
    {#- One anchored alternation of every division name (division_names), longest first: RE2 alternation
        is leftmost-first, so 吉林市 wins over 吉林. Built at compile time from the seeds, so the regex is a
        constant and compiled once.
        for_company: only provinces and 市 cities, as companies are named (阿里巴巴 is not 阿里地区). -#}
    {%- if execute -%}
        {%- set divisions = seed_relation('cn_divisions') -%}
        {%- if for_company -%}
            {%- set sql = "select token from (select name as token from " ~ divisions
                ~ " where level = 'province' or (level = 'city' and name like '%市')"
                ~ " union select short_name from " ~ divisions
                ~ " where (level = 'province' or (level = 'city' and name like '%市')) and length(short_name) >= 2)" -%}
        {%- else -%}
            {%- set sql = "select distinct token from (" ~ division_names(true) ~ ")" -%}
        {%- endif -%}
        {%- set rows = run_query(sql ~ " order by length(token) desc, token") -%}
        {%- set tokens = [] -%}
        {%- for token in rows.columns[0].values() -%}
            {%- do tokens.append(modules.re.escape(token)) -%}
        {%- endfor -%}
        {{- return('^(' ~ (tokens | join('|')) ~ ')') -}}
    {%- else -%}
        {{- return('^()') -}}
    {%- endif -%}
{%- endmacro %}

{% macro division_name_max_length() -%}
    {#- The length of the longest division name (积石山保安族东乡族撒拉族自治县: 15), at compile time. -#}
    {%- if execute -%}
        {%- set rows = run_query("select max(length(token)) from (" ~ division_names(true) ~ ")") -%}
        {{- return(rows.columns[0].values()[0]) -}}
    {%- else -%}
        {{- return(2) -}}
    {%- endif -%}
{%- endmacro %}

{% macro place_skip_pattern() -%}
    {#- What may come before a division name in a place cell and is no place: separators, 中国, a postcode,
        a label (地址:, 省:). -#}
    {{- return("^(?:" ~ '[\\s,.;:!?/|()\\[\\]{}<>"\\x27、·_#*~+=-]'
        ~ "|中华人民共和国|中国大陆|中国|大陆|(?i:p\\.?\\s*r\\.?\\s*china|china)"
        ~ "|(?:邮编|邮政编码)?:?[0-9]{6}"
        ~ "|(?:详细|联系|通讯|通信|公司|单位|办公|家庭|收货|注册|所在)?地址:?"
        ~ "|(?:省份|城市|地市|区县|县区|所在地区|所在地|省|市|区|县):)*") -}}
{%- endmacro %}

{% macro is_street(token, after) -%}
    {#- Whether a division name read off a cell is a street's: a street word follows a short name (长春路615号,
        中山路, 南京东路, 北京大街, 成都道1号), unless a division's name begins there (唐山路南区, 哈尔滨道里,
        湖南道县). A full name (北京市, 南山区) is the place whatever follows. -#}
    {%- set street_word = "[东西南北中]?(?:路|街|巷|弄|号|胡同|大道|大街|道)" -%}
    {%- if execute -%}
        {%- set rows = run_query("select distinct token from (" ~ division_names(true) ~ ")"
            ~ " where regexp_matches(token, '^" ~ street_word ~ "') order by length(token) desc, token") -%}
        {%- set street_like = rows.columns[0].values() | map('string') | list -%}
    {%- else -%}
        {%- set street_like = [] -%}
    {%- endif -%}
    (regexp_matches({{ after }}, '^[东西南北中]?(?:路|街|巷|弄|号|胡同|大道|大街|道(?:[0-9号]|$))')
     {%- if street_like %} and not regexp_matches({{ after }}, '^(?:{{ street_like | join('|') }})'){% endif %}
     and not regexp_matches({{ token }}, '[省市区县州旗盟]$'))
{%- endmacro %}

{% macro company_word_pattern(kind, anchor) -%}
    {#- Alternation of the company words of one kind, longest first, anchored at 'start' or 'end'. -#}
    {%- if execute -%}
        {%- set rows = run_query("select word from " ~ ref('company_name_words') ~ " where kind = '" ~ kind ~ "' order by length(word) desc, word") -%}
        {%- set words = [] -%}
        {%- for w in rows.columns[0].values() -%}
            {%- do words.append(modules.re.escape(w | lower)) -%}
        {%- endfor -%}
        {%- set alternation = '(' ~ (words | join('|')) ~ ')' -%}
        {{- return(('^' ~ alternation) if anchor == 'start' else ('(' ~ alternation ~ ')+$')) -}}
    {%- else -%}
        {{- return('^()') -}}
    {%- endif -%}
{%- endmacro %}
