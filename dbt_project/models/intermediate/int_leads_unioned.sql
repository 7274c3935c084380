-- The staged library records, materialised once for the models that split and judge them.
select * from {{ ref('stg_raw__library_records') }}
