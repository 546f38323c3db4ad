# veomock: every target installs what it needs into .venv first, so a fresh machine works.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint serve bench fuzz conformance clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The README's test command: lint first, then the suite (a browser and redis-server come from Debian).
test: lint
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# mypy reads the installed layout (veomock.*) through a tree of links to the source folders.
lint: $(STAMP)
	$(BIN)/ruff check contracts mocks conformance tests benchmarks examples
	mkdir -p $(VENV)/typecheck/veomock
	for d in contracts mocks conformance; do ln -sfn $(CURDIR)/$$d $(VENV)/typecheck/veomock/$$d; done
	$(BIN)/mypy

# Every reference client in examples/clients/ against its provider's mock, every scenario.
conformance: $(STAMP)
	@set -e; for p in $$($(BIN)/python -c "from veomock.contracts import available; print(' '.join(available()))"); do \
		$(BIN)/veomock check --provider $$p --junit $(VENV)/conformance-$$p.xml $(ARGS) \
			-- $(BIN)/python -m examples.clients.$$p; done

serve: $(STAMP)
	$(BIN)/veomock serve $(ARGS)

bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	# Python's default: compiled modules are cached (an environment may turn that off; a user's rarely does).
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m benchmarks $(ARGS)

# Schemathesis from the OpenAPI documents (thousands of cases), then a 200,000-request soak.
fuzz: $(STAMP)
	$(BIN)/python -m benchmarks.fuzz $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
