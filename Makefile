# The two commands a new user needs: `make synth` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
STAMP := .make
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet

.PHONY: install synth test lint typecheck unit snapshots bench-synth plan clean

install: $(STAMP)/python $(STAMP)/node $(STAMP)/promtool $(STAMP)/amtool

$(STAMP)/python: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	mkdir -p $(STAMP) && touch $@

## promtool and amtool (rule and routing tests) from Debian's prometheus packages, unpacked: no service.
$(STAMP)/promtool: $(STAMP)/python
	$(call unpack_deb,prometheus,promtool)

$(STAMP)/amtool: $(STAMP)/python
	$(call unpack_deb,prometheus-alertmanager,amtool)

define unpack_deb
	rm -rf $(STAMP)/deb-$(1) && mkdir -p $(STAMP)/deb-$(1)
	cd $(STAMP)/deb-$(1) && { apt-get download $(1) || { apt-get update -qq && apt-get download $(1); }; }
	dpkg-deb --fsys-tarfile $(STAMP)/deb-$(1)/$(1)_*.deb | tar -xO ./usr/bin/$(2) > $(BIN)/$(2)
	chmod +x $(BIN)/$(2) && rm -rf $(STAMP)/deb-$(1) && touch $@
endef

$(STAMP)/node: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(STAMP) && touch $@

## Synthesise every stage through the pinned CDK CLI, print a summary per stage, and write each
## stage's Kubernetes manifests as plain YAML under dist/<stage>/ for GitOps tools.
synth: install
	rm -rf cdk.out dist
	$(CDK) synth --quiet
	$(BIN)/python -m tools.synth_summary cdk.out
	$(BIN)/python -m tools.gitops_export dist

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

unit: install
	$(BIN)/pytest -q

## Rewrite the stack and chart snapshots after an intended change; review the diff before committing.
snapshots: install
	$(BIN)/pytest -q tests/snapshot --snapshot-update

## Everything CI runs: lint, types, then the whole test suite.
test: lint typecheck unit

bench-synth: install
	$(BIN)/python bench/synth.py

## Replay a trace against a stage's scaling rules and price it: make plan STAGE=dev [TRACE=file] [SHAPE=week] [SEED=1]
STAGE ?= dev
SEED ?= 1
SHAPE ?= none
plan: install
	$(BIN)/python -m planner --stage $(STAGE) --seed $(SEED) --shape $(SHAPE) $(if $(TRACE),--trace $(TRACE))

## Rewrite the "Latest figures" block of planner/README.md from a fresh plan of every stage.
.PHONY: plan-figures
plan-figures: install
	$(BIN)/python -m planner.figures

clean:
	rm -rf cdk.out dist $(STAMP)
