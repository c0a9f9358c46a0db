"""The cases' world of categories, territories and agencies."""

from tests.cases.conftest import world  # noqa: F401 (a fixture)
