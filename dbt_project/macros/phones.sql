{# Phone rules shared by the contact models. The numbering plan is phonenumbers' (seed cn_numbering_plan,
   written by pipelines/lib/standardise/phones.py); nothing here lists prefixes or area codes by hand. #}

{% macro numbering_plan_pattern(number_types, prefix='') -%}
    {#- One RE2 alternation of the national number patterns of the given types, read from the seed at
        compile time so the regex is a constant, compiled once. Match it with regexp_full_match.
        prefix: a regex put before the alternation (e.g. an optional country code). -#}
    {%- if execute -%}
        {%- set quoted = [] -%}
        {%- for t in number_types -%}{%- do quoted.append("'" ~ t ~ "'") -%}{%- endfor -%}
        {%- set rows = run_query("select national_pattern from " ~ ref('cn_numbering_plan')
                                 ~ " where number_type in (" ~ (quoted | join(', ')) ~ ") order by number_type, national_pattern") -%}
        {%- set patterns = [] -%}
        {%- for p in rows.columns[0].values() -%}{%- do patterns.append('(?:' ~ p ~ ')') -%}{%- endfor -%}
        {{- return("'" ~ prefix ~ "(?:" ~ (patterns | join('|')) ~ ")'") -}}
    {%- else -%}
        {{- return("'$^'") -}}
    {%- endif -%}
{%- endmacro %}

{% macro cn_number_type(national) -%}
    {#- The type of a mainland national significant number (no trunk 0, no +86), or null. -#}
    case
        when regexp_full_match({{ national }}, {{ numbering_plan_pattern(['mobile']) }}) then 'mobile'
        when regexp_full_match({{ national }}, {{ numbering_plan_pattern(['fixed_line']) }}) then 'fixed_line'
        when regexp_full_match({{ national }}, {{ numbering_plan_pattern(['toll_free']) }}) then 'toll_free'
        when regexp_full_match({{ national }}, {{ numbering_plan_pattern(['shared_cost']) }}) then 'shared_cost'
    end
{%- endmacro %}
