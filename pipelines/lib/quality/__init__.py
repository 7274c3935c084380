"""Quality gates (Great Expectations), Data Docs, figures, masking of personal data, run summaries."""
