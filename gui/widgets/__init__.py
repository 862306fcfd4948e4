"""Reusable widgets of the application: job panel, form fields, slice views, pick table."""
