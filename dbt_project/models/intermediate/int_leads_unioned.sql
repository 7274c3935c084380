-- depends_on: {{ source('raw', 'library_records') }}
-- depends_on: {{ source('raw', 'pending_changes') }}
-- depends_on: {{ ref('junk_values') }}
-- The staged library records, materialised once for the models that split and judge them.
{{ config(unique_key='record_id', pre_hook="{{ delete_pending_records() }}") }}
{% if is_incremental() -%}
-- Only the pending records, staged as they are read: a filter on the staging view would come after its
-- per-row work on every record of the library.
{{ stage_raw_leads(source('raw', 'library_records'), only_pending_records()) }}
{%- else -%}
select * from {{ ref('stg_raw__library_records') }}
{%- endif %}
