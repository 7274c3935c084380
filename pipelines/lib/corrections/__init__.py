"""Corrections: events from the business systems and manual edits, as rules over lead fields."""
