# The two commands a new user needs: `make run` and `make test`.
# Both install missing system packages first (see .ci/deps).

CARGO ?= cargo

# The harness, built if needed and run through cargo, so that it is found
# wherever cargo puts its target directory (CARGO_TARGET_DIR included).
HARNESS = $(CARGO) run --quiet -p harness --bin harness --

# The lowest toolchain that builds the locked tree: Cargo.toml's rust-version.
MSRV = $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)

.PHONY: all deps build run merge baseline test msrv bench fuzz fmt clean wireshark

all: build

deps:
	@bash .ci/deps

build: deps
	$(CARGO) build --workspace --bins

# Every scenario × server × client under a loopback capture: the verdict
# matrices, the compared fields, the baseline check, and where the captures are.
# On several machines: `make run SHARD=2/3 ARTIFACTS=shard-2` on each, then
# `make merge SHARDS="shard-1 shard-2 shard-3"` (see
# .github/workflows/conformance.yml).
# Then the command-line cases (tests/cli): each program against its
# Python original on odd argument vectors, stdout and signals. Both run;
# the first failure's exit code is make's.
run: build
	@status=0; \
	$(HARNESS) run $(if $(SHARD),--shard $(SHARD)) $(if $(ARTIFACTS),--artifacts $(ARTIFACTS)) || status=$$?; \
	$(if $(SHARD),,$(HARNESS) cli || { s=$$?; [ $$status -ne 0 ] || status=$$s; };) \
	[ $$status -ge 2 ] || { echo; echo "make run: the matrix's report is $(if $(ARTIFACTS),$(ARTIFACTS),$$(readlink -f target/harness/latest))/report.html"; }; \
	exit $$status

# The shards' artifacts combined into one run, with one baseline check.
merge: build
	$(HARNESS) merge $(SHARDS) $(if $(ARTIFACTS),--artifacts $(ARTIFACTS))

# Record this machine's verdicts as the expected ones (tests/baseline.toml),
# after a deliberate change in wire or command-line behaviour; commit the
# file with it.
baseline: build
	$(HARNESS) run --update-baseline
	$(HARNESS) cli --update-baseline

# The tests, then the same project tried in the checkouts a user may make
# (.ci/checkouts: a mode-700 parent, odd paths, CARGO_TARGET_DIR elsewhere,
# two runs at once, no root capabilities).
test: deps
	$(CARGO) test --workspace
	bash .ci/checkouts

# Builds every target with the toolchain rust-version names (installed by
# .ci/deps with MSRV=1), proving the version Cargo.toml claims is enough.
msrv:
	@MSRV=$(MSRV) bash .ci/deps
	$(CARGO) +$(MSRV) check --workspace --all-targets --locked

# The performance figures against fair baselines, and the criterion
# micro-benchmarks; see bench/run. Targets are checked here, never in tests.
bench: deps
	bash bench/run

# The latest run's capture of SCENARIO (default hello) in Wireshark, with
# the harness's profile (wireshark/profiles/harness).
SCENARIO ?= hello
wireshark:
	bash wireshark/open $(SCENARIO)

# Each fuzz target for FUZZ_SECONDS (default 60) seconds; see fuzz/README.md.
FUZZ_SECONDS ?= 60
fuzz: deps
	bash fuzz/run $(FUZZ_SECONDS)

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
