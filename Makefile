# Corral: `make run` starts the platform, `make test` runs the whole suite. Both set up everything
# they need on a fresh machine (virtualenv from the lockfile, nats-server, Docker engine, sandbox image).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MEMBERS := libs/contracts libs/observability libs/messaging libs/eventstore libs/agent libs/web libs/images \
           libs/stack libs/testing services/api services/runner services/proxy services/webhooks \
           services/ssh_gateway services/snapshot_manager
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test bench venv lock schemas clean

run: $(STAMP)
	$(BIN)/corral run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml $(foreach m,$(MEMBERS),$(m)/pyproject.toml)
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "installing python3-venv"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps $(addprefix -e ,$(MEMBERS))
	@touch $@

# Regenerate the lockfile from pyproject.toml (index: the machine's own pip configuration).
lock: $(STAMP)
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock

schemas: $(STAMP)
	$(BIN)/corral schemas

clean:
	rm -rf $(VENV) .pytest_cache
