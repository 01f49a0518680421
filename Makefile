# The two commands a new user needs: `make run` and `make test`.
# Both install missing system packages first (see .ci/deps).

CARGO ?= cargo

.PHONY: all deps build run baseline test fmt clean

all: build

deps:
	@bash .ci/deps

build: deps
	$(CARGO) build --workspace --bins

# Every scenario × server × client under a loopback capture: the verdict
# matrices, the compared fields, the baseline check, and where the captures are.
run: build
	target/debug/harness run

# Record this machine's verdicts as the expected ones (tests/baseline.toml),
# after a deliberate change in wire behaviour; commit the file with it.
baseline: build
	target/debug/harness run --update-baseline

test: deps
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
