# The two commands a new user needs: `make synth` and `make test`. Both install what they need first.
# `make help` lists every target. Each step prints one line with its duration; a step's own output
# is logged under .make/logs and shown only when it is slow or fails (tools/phase.sh).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
STAMP := .make
PHASE := tools/phase.sh
# For steps whose output is no progress report (the CLI's synth): shown only when they fail.
QUIET_PHASE := PHASE_SHOW_AFTER=never $(PHASE)
OUT := cdk.out
CDK_VERSION := $(shell sed -n 's/.*"aws-cdk": *"\([^"]*\)".*/\1/p' package.json)
# Node 20 is end-of-life; jsii would print a banner (as Python byte strings) on every synth. Node 22 is
# supported and prints nothing. JSII_DEPRECATED=quiet drops aws-cdk-lib's own deprecation warnings.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet
# --no-lookups: synth fails with the missing key instead of calling AWS and rewriting the committed
# cdk.context.json. Every CLI call goes through $(CDK_CLI).
CDK_CLI := $(CDK) --no-lookups

# STAGE selects one stage (dev, staging, prod) for synth, diff, deploy, destroy and plan.
STAGE ?=
STAGES := $(filter-out pipeline,$(basename $(notdir $(wildcard config/*.yaml))))
STAGE_CONTEXT := $(if $(STAGE),-c stage=$(STAGE))

.DEFAULT_GOAL := help
.PHONY: help install synth test lint typecheck unit snapshots diff deploy destroy deploy-pipeline bench-synth plan plan-figures clean \
	require-stage check-stage synth-stage

help: ## List the targets (this text)
	@echo "Usage: make <target> [STAGE=dev|staging|prod]"
	@echo
	@sed -n 's/^\([a-z-]*\):.*## \(.*\)$$/  \1\t\2/p' $(MAKEFILE_LIST) | expand -t 20
	@echo
	@echo "First time: make synth (installs everything, about 4 minutes), then make test."

install: ## Install the pinned Python packages into .venv and the pinned CDK CLI into node_modules
	@$(MAKE) -sq $(STAMP)/python || PIP_VERBOSE=1 $(PHASE) "install: Python packages into $(VENV) (about 4 minutes on a fresh clone)" \
		$(MAKE) -s --no-print-directory $(STAMP)/python
	@$(MAKE) -sq $(STAMP)/node || $(PHASE) "install: CDK CLI $(CDK_VERSION) into node_modules" \
		$(MAKE) -s --no-print-directory $(STAMP)/node
	@$(MAKE) -sq $(STAMP)/promtool $(STAMP)/amtool || $(PHASE) "install: promtool and amtool into $(BIN)" \
		$(MAKE) -s --no-print-directory $(STAMP)/promtool $(STAMP)/amtool
	@$(MAKE) -sq $(STAMP)/checkov || $(PHASE) "install: checkov into .venv-checkov (its own environment)" \
		$(MAKE) -s --no-print-directory $(STAMP)/checkov
	@$(MAKE) -sq $(STAMP)/planner-compiled || $(PHASE) "install: the planner's simulator compiled with mypyc" \
		$(MAKE) -s --no-print-directory $(STAMP)/planner-compiled

$(STAMP)/python: requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	mkdir -p $(STAMP) && touch $@

# The simulator's hot path as C extensions in build/planner-compiled (about 2x the speed; same results).
# A module mypyc cannot compile leaves the planner in plain Python with a warning, not a failed install;
# planner/__init__.py ignores a build whose sources have changed since.
$(STAMP)/planner-compiled: $(STAMP)/python tools/compile_planner.py $(wildcard planner/*.py)
	$(BIN)/python tools/compile_planner.py || echo "WARNING: planner runs uncompiled (plain Python, slower)"
	mkdir -p $(STAMP) && touch $@

# checkov pins an older boto3 than the app: its own environment, run by tests/compliance/test_checkov.py.
$(STAMP)/checkov: requirements-checkov.lock
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-checkov.lock
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

# Synthesise through the pinned CLI; its output (and the "Supply a stack id" hint) goes to the log.
# --no-notices: synth needs no network, not even for the CLI's notices.
CDK_SYNTH = $(QUIET_PHASE) "synth: $(or $(STAGE),all stages and the pipeline) (CDK CLI $(CDK_VERSION))" \
	$(CDK_CLI) synth --quiet --no-notices $(STAGE_CONTEXT) --output $(OUT)

synth: check-stage install ## Synthesise every stage, or only STAGE=<stage>; write its manifests to dist/; print a summary
	@rm -rf $(OUT) $(if $(STAGE),dist/$(STAGE),dist)
	@$(CDK_SYNTH)
	@$(QUIET_PHASE) "synth: Kubernetes manifests for GitOps into dist/" $(BIN)/python -m tools.gitops_export dist $(STAGE)
	@$(BIN)/python -m tools.synth_summary $(OUT)

lint: install ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy (strict for config/ and lambdas/)
	$(BIN)/mypy .

unit: install ## The whole pytest suite, in parallel on every core
	$(BIN)/pytest -q -n auto

snapshots: install ## Rewrite the stack and chart snapshots after an intended change; review the diff
	$(BIN)/pytest -q tests/snapshot --snapshot-update

# mypy (one core, about a minute on a fresh clone) runs beside the tests; --output-sync keeps each
# one's output in one piece.
test: lint ## Everything CI runs: lint, then types and the whole test suite side by side
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck unit

require-stage:
	@[ -n "$(STAGE)" ] || { echo "Name the stage: make $(MAKECMDGOALS) STAGE=dev (or staging, prod)" >&2; exit 2; }

# Fails at once, before the CLI starts, on a stage without a config file.
check-stage:
	@[ -z "$(STAGE)" ] || [ -f "config/$(STAGE).yaml" -a "$(STAGE)" != pipeline ] || { \
		echo "STAGE=$(STAGE): no such stage; allowed: $(STAGES) (one per config/<stage>.yaml)" >&2; exit 2; }

synth-stage: require-stage check-stage install
	@rm -rf $(OUT)
	@$(CDK_SYNTH)

diff: synth-stage ## What a deploy of STAGE would change (needs credentials for its account)
	$(CDK_CLI) diff --app $(OUT) '$(STAGE)/*'

deploy: synth-stage ## Deploy every stack of STAGE (needs credentials and a bootstrapped account)
	$(CDK_CLI) deploy --app $(OUT) '$(STAGE)/*'

destroy: synth-stage ## Delete STAGE's stacks after listing what stays behind; asks to type the stage name
	@$(BIN)/python -m tools.retained $(OUT) $(STAGE)
	@if [ "$(CONFIRM)" != "$(STAGE)" ]; then \
		answer=; [ -t 0 ] && read -r -p "Type the stage name ($(STAGE)) to delete its stacks: " answer; \
		[ "$$answer" = "$(STAGE)" ] || { echo "Not confirmed; nothing deleted. Without a terminal:" \
			"make destroy STAGE=$(STAGE) CONFIRM=$(STAGE)" >&2; exit 1; }; \
	fi
	$(CDK_CLI) destroy --app $(OUT) --force '$(STAGE)/*'

deploy-pipeline: install ## First deploy of the delivery pipeline (tooling account); it updates itself afterwards
	$(CDK_CLI) deploy Pipeline

bench-synth: install ## Wall time of synth: all stages vs one stage, median of 5 runs
	$(BIN)/python bench/synth.py

SEED ?= 1
SHAPE ?= none
plan: install ## Replay a trace against STAGE's scaling rules and price it (default dev) [TRACE=file] [SHAPE=week] [SEED=1]
	$(BIN)/python -m planner --stage $(or $(STAGE),dev) --seed $(SEED) --shape $(SHAPE) $(if $(TRACE),--trace $(TRACE))

plan-figures: install ## Rewrite the "Latest figures" block of planner/README.md from a fresh plan of every stage
	$(BIN)/python -m planner.figures

clean: ## Remove cdk.out, dist and the install stamps (not .venv or node_modules)
	rm -rf $(OUT) dist $(STAMP)
