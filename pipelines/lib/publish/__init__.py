"""Publication of the lead tables, and receipts for the files people dropped."""
