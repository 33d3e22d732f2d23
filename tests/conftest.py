"""What every test gets, so that a new test cannot forget it.

- The environment is scrubbed before any test module is imported: no ``IMAGEDESK_*``
  or ``OPENAI_*`` variable of the developer's shell reaches a test, Qt runs
  offscreen, and a subprocess (the CLI, a worker) that looks for a keyring gets the
  ``fail`` backend instead of the developer's real one.
- Every test runs with an in-memory keyring installed (the ``memory_keyring``
  fixture, autouse). Tests marked ``desktop_session`` talk to a real Secret Service
  instead and are the only ones that do.
- One skip policy: under CI (``CI=true``) a skipped test fails, so a missing service
  or package cannot hide a test there. Outside CI a skip is reported with its reason
  (pytest runs with ``-rs``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

_SCRUBBED_PREFIXES = ("IMAGEDESK_", "OPENAI_")


def scrub_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    """Remove the developer's settings and keys; pin what makes runs reproducible."""
    for name in [n for n in environ if n.startswith(_SCRUBBED_PREFIXES)]:
        del environ[name]
    environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    environ["TRANSFORMERS_VERBOSITY"] = "error"
    # Subprocesses resolve their own keyring: give them one that stores nothing.
    environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


scrub_environment(os.environ)  # at import: before any test module (or Qt) is imported

from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring  # noqa: E402

pytest_plugins = ["tests.skip_policy"]


@pytest.fixture(autouse=True)
def memory_keyring(request: pytest.FixtureRequest) -> Iterator[InMemoryKeyring]:
    """An empty in-memory keyring for this test (the developer's keyring is never touched)."""
    backend = InMemoryKeyring()
    if request.node.get_closest_marker("desktop_session") is not None:
        yield backend  # this test is about the real keyring; it installs nothing
        return
    with installed_keyring(backend):
        yield backend


@pytest.fixture
def restored_root() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back after the test (which may
    call ``logging_setup``)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.captureWarnings(False)
