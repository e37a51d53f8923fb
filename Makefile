# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
# Python 3.13, found by scripts/find-python (PYTHON=... names one); it says what to install
# when there is none.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt bench/requirements.txt scripts/make-venv | cksum | cut -d" " -f1)
# Test-only: Agent Framework's AgentFunctionApp, run on the devhost by tests/agents.
AGENTS_VENV := .venv-agents
AGENTS_STAMP := $(AGENTS_VENV)/.installed-$(shell cat requirements-agents.txt scripts/make-venv | cksum | cut -d" " -f1)
# Microsoft's Durable samples, from the source release of the pinned SDK (PyPI carries
# samples/ and samples-v2/), which tests/devhost/test_public_samples.py runs unchanged.
SDK_VERSION := $(shell sed -n 's/^azure-functions-durable==//p' requirements.txt)
SAMPLES := .samples/azure_functions_durable-$(SDK_VERSION)
# Microsoft's Agents Playground (npm), which tests/channels/test_agents_playground.py drives.
PLAYGROUND_VERSION := 0.2.28
PLAYGROUND := .playground/node_modules/@microsoft/m365agentsplayground/package.json

.PHONY: install agents-env samples playground run test test-fast func bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt bench/requirements.txt
	@scripts/make-venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

agents-env: $(AGENTS_STAMP)

$(AGENTS_STAMP): requirements-agents.txt
	@scripts/make-venv $(AGENTS_VENV)
	$(AGENTS_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-agents.txt
	rm -f $(AGENTS_VENV)/.installed-*
	touch $@

samples: $(SAMPLES)/PKG-INFO

$(SAMPLES)/PKG-INFO: requirements.txt | $(STAMP)
	rm -rf .samples && mkdir -p .samples
	$(PY) -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
	  -d .samples azure-functions-durable==$(SDK_VERSION)
	tar -xzf .samples/azure_functions_durable-$(SDK_VERSION).tar.gz -C .samples
	touch $@

playground: $(PLAYGROUND)

$(PLAYGROUND):
	@command -v npm >/dev/null || { echo "npm is not installed: the Agents Playground test will be skipped."; exit 0; }; \
	npm install --prefix .playground --no-audit --no-fund --silent @microsoft/m365agentsplayground@$(PLAYGROUND_VERSION)

# The same as `.venv/bin/python -m devhost .` once local.settings.json exists: it names the
# task hub, as for func start. On a local host the app itself falls back to the offline
# writer when no model is configured, and to development review links when there is no
# signing key, and says so. The port: PORT, else local.settings.json's Host.LocalHttpPort,
# else 7071.
run: install
	@test -f local.settings.json || cp local.settings.sample.json local.settings.json
	exec $(PY) -m devhost .

test: install agents-env samples playground
	@scripts/ensure-chromium
	$(PY) -m pytest

# Everyday work: everything but the soak, crash, multi-process and browser tests.
test-fast: install
	$(PY) -m pytest -m "not slow"

# Core Tools + Azurite, where they are installed (they cannot be installed on every machine).
func:
	@command -v func >/dev/null || { echo "Azure Functions Core Tools ('func') is not installed; use 'make run'."; exit 1; }
	@command -v azurite >/dev/null || npx --yes azurite --version >/dev/null || { echo "Azurite is needed: npm install -g azurite"; exit 1; }
	@test -f local.settings.json || cp local.settings.sample.json local.settings.json
	(npx --yes azurite --silent --location .azurite --skipApiVersionCheck &) ; func start $(if $(PORT),--port $(PORT))

# A review's lifecycle on the devhost beside Microsoft's in-memory Durable Task peer, and
# the ratio (docs/PERFORMANCE.md); BASELINE=DIR adds another checkout's devhost to the run.
bench: install
	$(PY) -m bench.vs_peer $(if $(BASELINE),--baseline $(BASELINE))

clean:
	rm -rf .devhost .published test-artifacts .pytest_cache .samples .playground $(AGENTS_VENV)
