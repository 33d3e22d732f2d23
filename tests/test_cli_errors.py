"""Every CLI failure is one line on stderr, and with ``--json`` one JSON object
on stdout, whatever went wrong and whenever (README, "Command line")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.cli import build_parser
from desktop_app.cli.errors import CliError, one_line
from tests.test_cli import job_count, run

HUGE = "9" * 30
BAD_INVOCATIONS: list[tuple[list[str], int, str]] = [
    (["--verbose"], 2, "the following arguments are required: COMMAND"),
    (["paint"], 2, "invalid choice: 'paint'"),
    (["queue"], 2, "the following arguments are required: ACTION"),
    (["queue", "add", "a cat", "--priority", HUGE], 2,
     "The priority must be between -1000 and 1000"),
    (["queue", "add", "a cat", "--priority", "high"], 2,
     "The priority must be a whole number between -1000 and 1000"),
    (["queue", "retry", HUGE], 2, "The job id must be between 1 and 9223372036854775807"),
    (["queue", "cancel", HUGE], 2, "The job id must be between 1 and"),
    (["queue", "cancel", "0"], 2, "The job id must be between 1 and"),
    (["queue", "cancel", "999"], 2, "There is no job 999"),
    (["gallery", "search", "fox", "--limit", HUGE], 2, "The limit must be between 1 and 10000"),
    (["gallery", "search", "fox", "--limit", "-1"], 2, "The limit must be between 1 and 10000"),
    (["gallery", "import", "/nonexistent/folder"], 2, "/nonexistent/folder is not a folder"),
    (["generate", "a cat", "--steps", HUGE], 2, "Steps must be between 1 and 150"),
    (["generate", "a cat", "--steps", "1" * 5000], 2, "Steps must be between 1 and 150"),
    (["generate", "a cat", "--guidance", "inf"], 2, "Guidance must be a number between 0 and 30"),
    (["generate", "a cat", "--guidance", "nan"], 2, "Guidance must be a number between 0 and 30"),
    (["generate", "a cat", "--seed", HUGE], 2, "The seed must be between 0 and 4294967295"),
    (["generate", "a cat", "-n", HUGE], 2, "The number of images must be between 1 and 16"),
    (["generate", "a cat", "--size", "1" * 5000 + "x64"], 2, "Size must look like 512x512"),
    (["generate", "a cat", "--size", "²x²"], 2, "Size must look like 512x512"),
    (["generate", "a cat", "--size", "99999x64"], 2, "The width must be between 64 and 4096"),
    (["generate", "a cat", "--size", "100x64"], 2, "multiple of 8"),
    (["generate", ""], 2, "Enter a prompt"),
    (["generate", "a cat", "--provider", "opnai"], 2, "Unknown provider 'opnai'"),
    (["generate", "a cat", "--mode", "cloud", "--provider", "local"], 2, "disagree"),
    (["generate", "a cat", "--format", "gif"], 2, "invalid choice: 'gif'"),
    # no provider can serve it: the job exists, fails, and its reasons are on one line
    (["generate", "a cat", "--provider", "cloud"], 3,
     "openai: skipped — not configured: add an OpenAI API key in Settings"),
]


def _ids() -> list[str]:
    return [" ".join(args)[:60] or "(nothing)" for args, _, _ in BAD_INVOCATIONS]


@pytest.mark.parametrize(("args", "code", "message"), BAD_INVOCATIONS, ids=_ids())
def test_a_failure_is_one_stderr_line_and_one_json_object(
        tmp_path: Path, args: list[str], code: int, message: str) -> None:
    plain = run(tmp_path, *args)
    assert plain.returncode == code, plain.stderr
    [line] = plain.stderr.splitlines()
    assert line.startswith("imagedesk: ") and message in line and "Traceback" not in line
    assert plain.stdout == ""

    as_json = run(tmp_path, *args, "--json")
    assert as_json.returncode == code, as_json.stderr
    assert len(as_json.stderr.splitlines()) == 1
    out = json.loads(as_json.stdout)  # exactly one JSON document
    assert isinstance(out, dict) and message in out["error"]
    if "job_id" not in out:  # failed before any job existed
        assert out == {"error": out["error"], "exit_code": code}
    if code == 2:
        assert job_count(tmp_path) == 0  # bad input queues nothing


def test_verbose_adds_debug_logs_but_no_trace_for_bad_input(tmp_path: Path) -> None:
    result = run(tmp_path, "--verbose", "queue", "cancel", "999")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("imagedesk: ")]
    assert errors == ["imagedesk: There is no job 999; it may have been cleared from the queue."]
    assert "Traceback" not in result.stderr


NUMERIC_OPTIONS = {  # the command line before the value, and where argparse puts it
    ("queue", "add", "x", "--priority"): ("priority", -1000, 1000),
    ("queue", "add", "x", "--steps"): ("steps", 1, 150),
    ("queue", "add", "x", "--seed"): ("seed", 0, 2**32 - 1),
    ("queue", "add", "x", "-n"): ("n", 1, 16),
    ("gallery", "search", "--limit"): ("limit", 1, 10_000),
    ("queue", "retry"): ("job_id", 1, 2**63 - 1),
    ("queue", "add", "x", "--from-gallery"): ("from_gallery", 1, 2**63 - 1),
    ("queue", "add", "x", "--mask-blur"): ("mask_blur", 0, 64),
    ("queue", "add", "x", "--strength"): ("strength", 0, 1),
    ("queue", "add", "x", "--upscale"): ("upscale", 1, 4),
    ("gallery", "search", "--source"): ("source", 1, 2**63 - 1),
}


@settings(max_examples=300, deadline=500)
@given(option=st.sampled_from(sorted(NUMERIC_OPTIONS)),
       value=st.one_of(st.integers(min_value=-(10**40), max_value=10**40).map(str),
                       st.text(max_size=50), st.just("1" * 10_000)))
def test_every_numeric_argument_is_in_range_or_one_line_naming_the_range(
        option: tuple[str, ...], value: str) -> None:
    dest, low, high = NUMERIC_OPTIONS[option]
    try:
        args = build_parser().parse_args([*option, value])
    except CliError as error:
        assert error.code == 2
        text = str(error)
        assert "\n" not in text
        if not value.startswith("-") or value.lstrip("-").isdigit():  # else: an option
            assert f"between {low} and {high}" in text
        return
    assert low <= getattr(args, dest) <= high


@given(st.lists(st.text(max_size=80), max_size=6))
def test_one_line_never_leaves_a_line_break(lines: list[str]) -> None:
    assert "\n" not in one_line("\n".join(lines))
    assert "\r" not in one_line("\r\n".join(lines))
