# Each target creates and uses .venv by itself, so every command works in a fresh shell.
VENV_PY := .venv/bin/python

.PHONY: setup run test test-fast bench lint

setup:
	@bash scripts/setup_env.sh

run: setup
	$(VENV_PY) main.py quickstart

test: setup
	$(VENV_PY) -m pytest -q --junitxml=.pytest-report.xml

test-fast: setup
	$(VENV_PY) -m pytest -q -m "not slow"

bench: setup
	$(VENV_PY) bench/bench_decoder.py
	$(VENV_PY) bench/bench_tokenizer.py

lint: setup
	$(VENV_PY) -m ruff check .
