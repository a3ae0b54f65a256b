"""Alembic scripts for the ThoughtScope schema (run by `storage.migrate`, never by hand)."""
