"""The suite's skip policy (tests/skip_policy.py), run on a throwaway test file."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_needs_a_service():
    pytest.skip("redis-server is not installed")

@pytest.mark.xfail(reason="a known upstream bug", strict=True)
def test_known_bug():
    assert False
"""


def test_a_skip_fails_under_ci_and_names_its_reason(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest_inprocess("-p", "tests.skip_policy")
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*redis-server is not installed*"])


def test_outside_ci_a_skip_is_a_skip(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest_inprocess("-p", "tests.skip_policy", "-rs")
    result.assert_outcomes(skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed*"])
