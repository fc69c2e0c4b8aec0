# The two set-up commands of the README are `make demo` and `make test`; everything else is a helper.
# Every target installs what it needs itself, into the repository's ignored folders.

CARGO ?= cargo
SIZE ?= 1GiB

.PHONY: demo test lint fmt bench ci clean-demo

## Run the pipeline locally on built-in defaults (no AWS account, no Amazon credentials).
demo:
	$(CARGO) run --quiet -p amzpipe-testkit --bin local-demo

## Unit, integration and end-to-end tests: the README's test command, run by CI.
test:
	$(CARGO) test --workspace --all-targets

## Formatting and lints, as CI runs them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The transfer benchmark: prints throughput and peak RSS (SIZE=256MiB for a quicker run).
bench:
	$(CARGO) run --profile perf -p amzpipe-testkit --bin transfer-bench -- --size $(SIZE)

## What CI runs on a clean checkout.
ci:
	.ci/run

clean-demo:
	rm -rf target/demo
