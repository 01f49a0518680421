# The two commands a new user needs: `make run` and `make test`.
# Both install missing system packages first (see .ci/deps).

CARGO ?= cargo

.PHONY: all deps build run test fmt clean

all: build

deps:
	@bash .ci/deps

build: deps
	$(CARGO) build --workspace --bins

# Every server × client pairing under a loopback capture: the verdict
# matrix, the handshake tables, and where the captures are.
run: build
	target/debug/harness run

test: deps
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
