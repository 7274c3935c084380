"""Notifications to sales when a published lead changes (webhooks)."""
