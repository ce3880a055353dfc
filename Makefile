# veo-relay: the front door. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help test lint validate unit integration e2e test-deployed run openapi build deploy bench least-privilege clip clean

help:
	@echo "make test      lint, template validation and every test suite (what CI runs)"
	@echo "make run       the whole system offline: API :3000, AWS :5000, provider simulators"
	@echo "make openapi   regenerate docs/openapi.json from the API's routes"
	@echo "make clip      re-make the simulator's H.264 clip (offline/simulator/clip.mp4; needs ffmpeg)"
	@echo "make bench     performance figures beside their baselines -> docs/performance.md (not in test)"
	@echo "make least-privilege  IAM granted vs used by the suites -> docs/least-privilege.md"
	@echo "make build     sam build (layer built for arm64 / python3.13, bytecode by LAMBDA_PYTHON)"
	@echo "make deploy    sam deploy (guided the first time)"
	@echo "make test-deployed STACK=name   the end-to-end suite against a stack deployed with Simulate=true"

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r layers/shared/requirements.txt -r requirements-dev.txt
	touch $@

test: lint validate unit integration e2e

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

validate: $(VENV)/.installed
	$(BIN)/sam validate --lint

unit: $(VENV)/.installed
	$(BIN)/pytest -q --durations=5 tests/unit

integration: $(VENV)/.installed
	$(BIN)/pytest -q --durations=5 tests/integration

e2e: $(VENV)/.installed
	$(BIN)/pytest -q --durations=5 tests/e2e

# Over SigV4 with the caller's own AWS credentials and region; the stack must have Simulate=true.
test-deployed: $(VENV)/.installed
	@test -n "$(STACK)" || { echo "usage: make test-deployed STACK=<stack name>"; exit 2; }
	VEO_RELAY_STACK=$(STACK) $(BIN)/pytest -q tests/e2e

run: $(VENV)/.installed
	$(BIN)/python -m offline

openapi: $(VENV)/.installed
	$(BIN)/python -m tools.openapi

# The simulator's video (offline/simulator/mp4.py pads and tags it): 1 s of SMPTE bars, 64x36,
# H.264 constrained baseline, moov first, no encoder info or metadata, so that it stays about 1 KB
# and almost every [sim:size=] plays. Committed; only this target needs ffmpeg.
CLIP := offline/simulator/clip.mp4
clip:
	ffmpeg -loglevel error -y -f lavfi -i smptebars=size=64x36:rate=4:duration=1 \
		-c:v libx264 -profile:v baseline -preset veryslow -crf 30 -pix_fmt yuv420p \
		-x264-params no-info=1 -bsf:v filter_units=remove_types=6 \
		-movflags +faststart -use_editlist 0 -map_metadata -1 -fflags +bitexact -flags:v +bitexact \
		$(CLIP)

# Minutes, on a quiet machine; `python -m bench --quick` or `--only NAME` while developing.
bench: $(VENV)/.installed
	$(BIN)/python -m bench

# Every AWS call of the integration and end-to-end suites, checked against its caller's role,
# beside what the template grants.
IAM_USAGE := $(CURDIR)/.aws-sam/iam-usage.jsonl
least-privilege: $(VENV)/.installed
	mkdir -p .aws-sam && rm -f $(IAM_USAGE)
	VEO_RELAY_IAM_USAGE=$(IAM_USAGE) $(BIN)/pytest -q tests/integration tests/e2e
	$(BIN)/python -m tools.least_privilege $(IAM_USAGE)

# The layer's bytecode is compiled by the runtime's Python (3.13): the first python3.13 that runs,
# on the PATH or in pyenv; set LAMBDA_PYTHON to choose another.
FOUND_LAMBDA_PYTHON := $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13); do \
	$$p -c 'import sys' 2>/dev/null && echo $$p && break; done)
ifneq ($(FOUND_LAMBDA_PYTHON),)
LAMBDA_PYTHON ?= $(FOUND_LAMBDA_PYTHON)
export LAMBDA_PYTHON
endif

build: $(VENV)/.installed
	$(BIN)/sam build

# Guided the first time (no stack yet), then with the answers saved in samconfig.toml.
deploy: build
	@if $(BIN)/sam list stack-outputs --stack-name veo-relay >/dev/null 2>&1; then \
		$(BIN)/sam deploy; else $(BIN)/sam deploy --guided; fi

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache
