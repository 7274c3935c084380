{% macro clean_person_name(expr) -%}
    {#- Chinese names lose all spaces, bracketed notes and a trailing honorific (王总, 张经理, 李先生);
        Latin names keep single spaces. A name with no letter or Han character is no name. -#}
    {%- set honorifics -%}
        {%- if execute -%}
            {%- set rows = run_query("select honorific from " ~ ref('name_honorifics') ~ " order by length(honorific) desc") -%}
            {{- rows.columns[0].values() | join('|') -}}
        {%- else -%}先生{%- endif -%}
    {%- endset -%}
    case
        when not regexp_matches({{ expr }}, '[\p{Han}A-Za-z]') then null
        when regexp_matches({{ expr }}, '\p{Han}') then
            coalesce(
                nullif(regexp_replace(
                    regexp_replace(regexp_replace({{ expr }}, '[(\[][^)\]]*[)\]]', '', 'g'), '[\s.]', '', 'g'),
                    '(\p{Han})({{ honorifics }})$', '\1'), ''),
                regexp_replace({{ expr }}, '\s', '', 'g'))
        else trim(regexp_replace(regexp_replace({{ expr }}, '^(mr|mrs|ms|miss|dr)\.?\s+', '', 'i'), '\s+', ' ', 'g'))
    end
{%- endmacro %}
