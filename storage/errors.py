"""The one exception the storage layer lets out.

Why one type: the CLI and the app catch `StorageError` and print its message; anything
SQLAlchemy, sqlite3, alembic or the file system raises is translated at the boundary, so a
user never sees a traceback for a bad path, a corrupt file or a malformed import.
"""

from __future__ import annotations


class StorageError(Exception):
    """A database or export/import problem, with a message written for the user."""
