"""Security tests share the cases package's small region."""

from tests.cases.conftest import world  # noqa: F401  (the world fixture)
