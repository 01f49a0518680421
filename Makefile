# The two commands a new user needs: `make run` and `make test`.
# Both install missing system packages first (see .ci/deps).

CARGO ?= cargo

.PHONY: all deps build run baseline test bench fuzz fmt clean

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

# The three performance figures (harness overhead, dissection throughput
# against tshark, capture completeness on 1 GiB) and the criterion
# micro-benchmarks; see bench/run. Targets are checked here, never in tests.
bench: deps
	bash bench/run

# Each fuzz target for FUZZ_SECONDS (default 60) seconds; see fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz: deps
	bash fuzz/run $(FUZZ_SECONDS)

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
