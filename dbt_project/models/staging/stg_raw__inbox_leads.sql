-- depends_on: {{ ref('junk_values') }}
{{ stage_raw_leads(source('raw', 'inbox_leads')) }}
