# The two commands a newcomer needs: `make run` and `make test`.
# Everything installs into .venv; torch comes first so pip takes the build meant
# for this machine (the CPU build on disk here, the CUDA build on a GPU machine).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= local,dev,nsfw,remote,api

.PHONY: run test test-slow lint typecheck pytest bench package clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m desktop_app

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache desktop_app tests bench
	$(VENV)/bin/lint-imports --no-cache --no-logo

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	QT_QPA_PLATFORM=offscreen TRANSFORMERS_VERBOSITY=error $(PY) -m pytest -q -p no:cacheprovider -m "not desktop_session and not full_size" $(PYTEST_ARGS)

# The slow tests alone, and the full-size SDXL checkpoint load that make test leaves out
# (it needs about 21 GB of memory; on a machine with a GPU it runs there).
test-slow: $(STAMP)
	QT_QPA_PLATFORM=offscreen TRANSFORMERS_VERBOSITY=error $(PY) -m pytest -q -p no:cacheprovider -m "(slow or full_size) and not desktop_session" $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

package: $(STAMP)
	bash packaging/build.sh

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
