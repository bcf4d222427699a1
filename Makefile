# The two commands: `make run` (set up, build the index if missing, open the coach) and `make test`.
.PHONY: run test setup lint bench

run: setup
	.venv/bin/coach index
	.venv/bin/coach serve --open

test:
	bash scripts/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/run.py
