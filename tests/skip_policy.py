"""The suite's one skip policy, as a pytest plugin (loaded by tests/conftest.py).

Under CI (``CI=true``) a skipped test is reported as failed: a test skipped there
because a service or a package is missing would otherwise pass unseen. Tests that
only make sense in another environment are deselected with ``-m`` by ``.ci/run``,
never skipped. An expected failure (``xfail``) is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI=true, where no test may skip: {reason}\n"
                           "Install what it needs (see .ci/run's package list) or deselect "
                           "it there with -m.")
    return report
