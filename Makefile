# make setup: create/update the project-local .venv from the lock (idempotent); make demo / make test run setup first.
# make lock: regenerate requirements/lock-*.txt after editing pyproject.toml's dependencies (ADR 0006).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP_VERSION := 26.3
# What setup installs: the test lock (core + dev + ml + api + flows). The per-app locks are for the images.
LOCK := requirements/lock-test.txt
# The stamp names the content of the lock and pyproject.toml: edit either and setup runs again.
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-16)

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export PREFECT_LOGGING_LEVEL := WARNING
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup tools lock lock-check demo test test-images lint bench

setup: $(STAMP)

# pip, not uv, installs (it takes torch from the local disk). Every pin is hash-checked; --no-deps because the
# lock is complete; the project itself goes in editable, built with the lock's setuptools.
$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $(STAMP)

# Tools in venvs of their own (tests/deploy runs them): checkov, from its hash-checked lock.
CHECKOV_STAMP := .tools/checkov/.installed-$(shell sha256sum requirements/lock-checkov.txt | cut -c1-16)
tools: $(CHECKOV_STAMP)

$(CHECKOV_STAMP):
	test -x .tools/checkov/bin/python || python3 -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	.tools/checkov/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/lock-checkov.txt
	rm -f .tools/checkov/.installed-*
	touch $(CHECKOV_STAMP)

# Not `setup`: after a dependency is added, the old lock no longer satisfies pyproject.toml and setup would
# fail before the lock could be remade; any earlier setup left the resolver (uv) in the venv.
lock:
	test -x $(VENV)/bin/uv || $(MAKE) setup
	requirements/compile.sh

lock-check: setup
	requirements/compile.sh --check

demo: setup
	$(VENV)/bin/oncograph demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint tools
	$(PY) -m pytest

# The images really build (docker/build-local.sh: buildah, a Debian base made by debootstrap, the lock's wheels)
# and the api image's migrate job and entrypoint work against a real PostgreSQL, the ui image's entrypoint serves
# (tests/deploy/test_images.py). ~8 min on a cold cache, 2-3 min warm. Needs root and `apt-get install -y podman buildah debootstrap`.
test-images: setup
	$(PY) -m pytest -m images tests/deploy/test_images.py

bench: setup
	$(PY) bench/ingest.py
