# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz lint clean

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.runtime
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A longer schemathesis run than the bounded one inside `make test`.
fuzz: $(BIN)/.dev
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest tests/system/test_fuzz.py -q

# ruff, then the three OpenAPI linters against the document the app serves (tools/openapi, pinned with npm).
OPENAPI_TOOLS := tools/openapi
$(OPENAPI_TOOLS)/node_modules/.installed: $(OPENAPI_TOOLS)/package-lock.json
	cd $(OPENAPI_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(BIN)/.dev $(OPENAPI_TOOLS)/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/python $(OPENAPI_TOOLS)/lint.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# `make bench`: load-tests the service on 127.0.0.1 (about 10-12 min), writes bench/results.md and
# bench/p50_latency.png. Not a test: nothing asserts a time. Needs wrk and Node.js (for the peer).
# BENCH_ARGS adds options, e.g. BENCH_ARGS="--before /tmp/before --profile" (see bench/run.py --help).
.PHONY: bench
bench: $(BIN)/.dev
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	cd bench/peer && npm ci --no-audit --no-fund --loglevel=error
	timeout 2700 $(BIN)/python bench/run.py $(BENCH_ARGS)
