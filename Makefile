# The two set-up commands of the README are `make demo` and `make test`; everything else is a helper.
# Every target installs what it needs itself, into the repository's ignored folders.

CARGO ?= cargo
SIZE ?= 1GiB
PYTHON ?= python3
VENV := .venv
# Pinned local tools, installed from PyPI into .venv/: moto's server is the local AWS (S3, DynamoDB,
# Secrets Manager, Step Functions) the tests start; cargo-lambda serves the functions locally.
PY_TOOLS := moto[server]==5.2.5 cargo-lambda==1.9.2 duckdb==2.0.1
TOOLS_STAMP := $(VENV)/.tools-moto-5.2.5-cargo-lambda-1.9.2-duckdb-2.0.1
# Infrastructure checks, in a virtualenv of their own (SAM CLI and checkov pin their own dependencies).
INFRA_VENV := .venv-infra
INFRA_TOOLS := aws-sam-cli==1.170.0 cfn-lint==1.58.0 checkov==3.2.459 ziglang==0.17.1 parliament==1.6.4
INFRA_STAMP := $(INFRA_VENV)/.tools-sam-1.170.0-cfn-lint-1.58.0-checkov-3.2.459-zig-0.17.1-parliament-1.6.4
ASL_VALIDATOR := .tools/node/node_modules/.bin/asl-validator
# The offline IAM evaluator of the permission contract test (tests/tests/permissions.rs), pinned.
IAM_SIMULATE := .tools/iam/node_modules/@cloud-copilot/iam-simulate/package.json

# The function binaries and the local tools that run them, built once into target/debug/ (as the tests are).
LOCAL_BINARIES := --bins -p refresh-token -p create-request -p poll-status -p download-decrypt -p amzpipe-testkit

.PHONY: demo test tools local-stack watch lint lint-infra build-infra fmt bench bench-load ci clean-demo

## Run the pipeline locally on built-in defaults (no AWS account, no Amazon credentials): the real state
## machine on moto, the real function binaries behind a Lambda Runtime API, the Amazon API simulator.
demo: tools
	@echo "== Building the four functions and the demo into target/debug/ (cargo shows its progress)"
	$(CARGO) build $(LOCAL_BINARIES)
	@echo "== Running the demo"
	$(CARGO) run --quiet -p amzpipe-testkit --bin local-demo

## The local stack for trying the functions by hand: simulator, moto, the state machine, the function
## binaries behind the Lambda Invoke API on 127.0.0.1:9000; see README "The functions locally".
local-stack: tools
	$(CARGO) build $(LOCAL_BINARIES)
	$(CARGO) run --quiet -p amzpipe-testkit --bin local-stack

## Unit, integration and end-to-end tests: the README's test command, run by CI.
test: tools
	$(CARGO) test --workspace --all-targets

## Install the pinned local tools into .venv/ and .tools/iam/ (idempotent; about two minutes the first time).
tools: $(TOOLS_STAMP) $(IAM_SIMULATE)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(foreach tool,$(PY_TOOLS),'$(tool)')
	touch $@

## The four functions under cargo lambda watch (rebuilt on change; Invoke API on 127.0.0.1:9000), for
## `local-stack --functions-url http://127.0.0.1:9000`. cargo-lambda builds with an environment of its own,
## so it has a target directory of its own (a second build of the dependencies).
watch: tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_TARGET_DIR="$(CURDIR)/target/lambda-watch" \
		$(CARGO) lambda watch -A 127.0.0.1 -P 9000 --env-file target/local/stack.env

## Formatting and lints, as CI runs them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Static checks of infra/: cfn-lint, sam validate --lint, checkov, parliament over the rendered IAM policies,
## the alarm contract, asl-validator (installs them first).
lint-infra: $(INFRA_STAMP) $(ASL_VALIDATOR)
	infra/validate

## `sam build` of the template, as CI checks it: x86_64, because the aarch64 Rust target does not come from
## the package registries this machine reaches (deploy arm64 with `sam build` where rustup can add it).
build-infra: tools $(INFRA_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/$(INFRA_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
		sam build --parameter-overrides Architecture=x86_64

$(INFRA_STAMP):
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check $(INFRA_TOOLS)
	touch $@

$(IAM_SIMULATE):
	mkdir -p .tools/iam
	cd .tools/iam && npm install --silent --no-audit --no-fund --no-save @cloud-copilot/iam-simulate@0.1.173

$(ASL_VALIDATOR):
	mkdir -p .tools/node
	cd .tools/node && npm install --silent --no-audit --no-fund --no-save asl-validator@4.0.0

fmt:
	$(CARGO) fmt --all

## The transfer benchmark: prints throughput and peak RSS (SIZE=256MiB for a quicker run).
bench:
	$(CARGO) run --profile perf -p amzpipe-testkit --bin transfer-bench -- --size $(SIZE)

## The load benchmark: one schedule of 1,000 Ads profiles, 50 SP-API sellers and 20 AMC instances through the
## real state machine on the local stack, the simulator enforcing Amazon's quotas (README "Load benchmark").
## LOAD="--ads 100 --sp 10 --amc 5" for a quicker run.
LOAD ?=
bench-load: tools
	$(CARGO) run --quiet -p amzpipe-testkit --bin load-bench -- $(LOAD)

## What CI runs on a clean checkout.
ci:
	.ci/run

clean-demo:
	rm -rf target/demo
