{#-
  Incremental runs (pipelines/lib/refresh.py): an import of a few files into a large library standardises
  only the records it added or changed, listed in raw.pending_changes; the nightly run passes
  --full-refresh and rebuilds every model from the whole library.
-#}

{% macro only_pending_records(column='record_id') -%}
{%- if is_incremental() -%}
{{ column }} in (select record_id from {{ source('raw', 'pending_changes') }})
{%- else -%}
true
{%- endif -%}
{%- endmacro %}

{#- Values (companies, titles, places) not standardised yet: each distinct value is worked out once. -#}
{% macro only_new_values(expression, column=none) -%}
{%- if is_incremental() -%}
{{ only_pending_records() }} and {{ expression }} not in (select {{ column or expression }} from {{ this }} where {{ column or expression }} is not null)
{%- else -%}
true
{%- endif -%}
{%- endmacro %}

{#- Before an incremental run of a record-level model, every pending record leaves it: delete+insert
    alone replaces only the records the model outputs again, so a record now rejected (or retired, or
    without contacts) would keep its old rows. -#}
{% macro delete_pending_records() -%}
{%- if is_incremental() -%}
delete from {{ this }} where record_id in (select record_id from {{ source('raw', 'pending_changes') }})
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}
