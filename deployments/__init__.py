"""Deployment builders and schedule helpers (the Hibernator)."""
