{% macro division_token_pattern(for_company=false) -%}
    {#- One anchored alternation of every province/city name and short name and every district name,
        longest first: RE2 alternation is leftmost-first, so 吉林市 wins over 吉林. Built at compile time
        from the seed, so the regex is a constant and compiled once.
        for_company: only provinces and 市 cities, as companies are named (阿里巴巴 is not 阿里地区). -#}
    {%- if execute -%}
        {%- set divisions = ref('cn_divisions') -%}
        {%- if for_company -%}
            {%- set sql = "select token from (select name as token from " ~ divisions
                ~ " where level = 'province' or (level = 'city' and name like '%市')"
                ~ " union select short_name from " ~ divisions
                ~ " where (level = 'province' or (level = 'city' and name like '%市')) and length(short_name) >= 2)" -%}
        {%- else -%}
            {%- set sql = "select token from (select name as token from " ~ divisions
                ~ " union select short_name from " ~ divisions
                ~ " where level in ('province', 'city') and length(short_name) >= 2)" -%}
        {%- endif -%}
        {%- set rows = run_query(sql ~ " order by length(token) desc, token") -%}
        {{- return('^(' ~ (rows.columns[0].values() | join('|')) ~ ')') -}}
    {%- else -%}
        {{- return('^()') -}}
    {%- endif -%}
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
