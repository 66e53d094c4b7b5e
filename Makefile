# Developer commands, also used by CI (.ci/run calls `make test`).
# The cargo target directory lives outside the clone so a fresh clone (CI) reuses the slow
# llama.cpp build; override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/quarry/target
CARGO ?= cargo
SHELL := /bin/bash
QUARRY = $(CARGO_TARGET_DIR)/debug/quarry

.PHONY: setup llama-server llama-cpp-python build demo test test-sqlite lint fmt clean-demo

setup:
	@bash scripts/setup.sh

# llama.cpp's own llama-server, built once per machine into ~/.cache/quarry/llama-server/
# (12-20 minutes on 2 cores the first time): the real-server tests (tests/servers.rs) run
# against it, and under CI they fail without it.
llama-server:
	@bash scripts/llama-server.sh >/dev/null

# llama-cpp-python's server, a second server implementation, installed once per machine into
# a venv in ~/.cache/quarry/llama-cpp-python/ (it compiles llama.cpp the first time): the
# real-server tests run against it too, and under CI they fail without it.
llama-cpp-python:
	@bash scripts/llama-cpp-python.sh >/dev/null

build: setup
	$(CARGO) build

# The main job on the bundled example folder with the default model.
demo: build
	$(QUARRY) enqueue examples/research
	@# exit 1 means some jobs are dead: the knowledge base is still written, and
	@# `quarry status --failed` says why.
	$(QUARRY) run --workers 4 || [ $$? -eq 1 ]
	@echo "open output/index.md (or: mdbook serve output)"

# The whole test suite, real-model tests included, on SQLite and on a throwaway PostgreSQL
# server (scripts/pg-test-cluster.sh: installed from Debian's packages when missing, on
# 127.0.0.1, stopped at the end), so the queue suite and the multi-process tests also run on
# PostgreSQL. CI runs this.
test: setup llama-server llama-cpp-python
	@bash scripts/pg-test-cluster.sh run $(MAKE) --no-print-directory test-sqlite

# The same suite without a PostgreSQL server (its PostgreSQL tests skip outside CI).
test-sqlite: setup llama-server llama-cpp-python
	@mkdir -p $(CARGO_TARGET_DIR)
	$(CARGO) test --no-fail-fast 2>&1 | tee $(CARGO_TARGET_DIR)/test.log; status=$${PIPESTATUS[0]}; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "all suites: %d passed, %d failed\n", p, f }' $(CARGO_TARGET_DIR)/test.log; \
	exit $$status

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean-demo:
	rm -rf queue.db queue.db-wal queue.db-shm queue.db.lock output output-book
