"""Test settings for the event-store suites on SQLite, the embedded default: `test` with an in-memory SQLite
database. `scripts/test` runs a second session with these; tests/conftest.py then keeps only the store-parametrised
modules and the tests marked `every_database`."""

import os

os.environ["DATABASE_URL"] = "sqlite://:memory:"
os.environ["TEST_DATABASE_VENDOR"] = "sqlite"

from experiments_api.settings.test import *  # noqa: E402,F403
