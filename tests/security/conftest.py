"""Fixtures the security tests borrow from the node and end-to-end suites (not copied)."""

from __future__ import annotations

from tests.e2e.test_pipeline import run_service, tiny_model  # noqa: F401  (fixtures)
from tests.node.conftest import start_node  # noqa: F401  (fixture)
from tests.node.test_tls import pki  # noqa: F401  (fixture: a hospital CA, a rogue CA, their leaves)
