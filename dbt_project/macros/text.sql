{# Text rules shared by every staging model. #}

{% macro to_halfwidth(expr) -%}
    {# Full-width ASCII (U+FF01-U+FF5E), the ideographic space and common CJK punctuation to half-width. #}
    {# translate() costs ~2 us a value, so it only runs on the few values that have such a character. #}
    case when regexp_matches({{ expr }}, '[\x{ff01}-\x{ff5e}\x{3000}—–“”‘’【】「」。]')
         then translate({{ expr }}, '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　—–“”‘’【】「」。', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~ --""''''[][].')
         else {{ expr }} end
{%- endmacro %}

{% macro junk_values(scope) -%}
    {# Junk values from the seed, inlined at compile time as a constant list so the check is vectorised. #}
    {%- if execute -%}
        {%- set rows = run_query("select value from " ~ ref('junk_values') ~ " where scope = '" ~ scope ~ "' order by value") -%}
        {%- set quoted = [] -%}
        {%- for value in rows.columns[0].values() -%}
            {%- do quoted.append("'" ~ (value | lower | replace("'", "''")) ~ "'") -%}
        {%- endfor -%}
        {{ return(quoted | join(', ') if quoted else "null") }}
    {%- else -%}
        {{ return("null") }}
    {%- endif -%}
{%- endmacro %}

{% macro squish(expr) -%}
    {# Every kind of space (incl. NBSP, ideographic, zero-width, BOM) folded to one space, ends trimmed, full
       width made half. One scan first says whether a value needs any of it: most do not, and a replace costs
       three times a scan (18 fields of a million records: 6 s of CPU, 2 s with the check). #}
    case when regexp_matches({{ expr }}, '[\s\x{00a0}\x{200b}\x{feff}\x{ff01}-\x{ff5e}\x{3000}—–“”‘’【】「」。]')
         then nullif(trim(regexp_replace({{ to_halfwidth(expr) }}, '[\s\x{00a0}\x{200b}\x{feff}]+', ' ', 'g')), '')
         else nullif({{ expr }}, '') end
{%- endmacro %}

{% macro null_if_junk(expr) -%}
    {# Null when the (already squished) value is a junk placeholder (无, -, null, test ...). #}
    case when lower({{ expr }}) in ({{ junk_values('any') }}) then null else {{ expr }} end
{%- endmacro %}
