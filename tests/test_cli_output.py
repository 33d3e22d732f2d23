"""What the CLI's progress printer shows while a job runs."""

from __future__ import annotations

import io

from desktop_app.cli.output import ProgressPrinter
from desktop_app.engine.events import JobWaiting


def test_the_progress_printer_says_when_a_job_waits_for_a_rate_limit() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(7, out)
    printer(JobWaiting(7, "openai", 27.3, "rate limit"))
    printer(JobWaiting(8, "openai", 50.0, "rate limit"))  # another job: not ours to show
    printer.done()
    assert out.getvalue() == "waiting for openai's rate limit, 28 s\n"
