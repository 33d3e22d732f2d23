"""The tests' one engine builder keeps up with ``Engine``: an option added to the
engine that the builder does not pass on would leave every test on the old wiring."""

from __future__ import annotations

import inspect

from desktop_app.engine.engine import Engine
from tests.fakes.scripted_engine import engine_in

# What the builder makes itself from the folder it is given.
MADE_FROM_THE_FOLDER = {"queue", "gallery", "metrics_store", "saver"}


def test_the_test_builder_passes_on_every_engine_option() -> None:
    engine_options = set(inspect.signature(Engine.__init__).parameters) - {"self"}
    builder_options = set(inspect.signature(engine_in).parameters) - {"folder", "db_path"}
    assert engine_options - MADE_FROM_THE_FOLDER == builder_options
