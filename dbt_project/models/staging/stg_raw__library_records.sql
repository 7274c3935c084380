-- depends_on: {{ ref('junk_values') }}
{{ stage_raw_leads(source('raw', 'library_records')) }}
