"""Alembic migrations owning the metadata schema.

``HEAD`` names the newest revision so that opening an up-to-date store does not need to import
Alembic at all; a test checks it equals Alembic's own head.
"""

HEAD = "0007"
VERSION_TABLE = "loopml_alembic_version"
