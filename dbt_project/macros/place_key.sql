{% macro place_key(prefix='') -%}
    {#- One key for a (province, city, district, address) combination; nulls hash like any value. -#}
    hash({{ prefix }}province, {{ prefix }}city, {{ prefix }}district, {{ prefix }}address)
{%- endmacro %}
