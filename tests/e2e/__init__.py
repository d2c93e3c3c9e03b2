"""End-to-end tests: tandem driving the real claude and codex CLIs against a fake model."""

import pytest

# The shared scenarios assert in a helper module: let pytest explain their failures too.
pytest.register_assert_rewrite("e2e.e2e_support")
