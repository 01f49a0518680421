# The two commands a new user needs: `make run` and `make test`.
# Both install missing system packages first (see .ci/deps).

CARGO ?= cargo

.PHONY: all deps build run test fmt clean

all: build

deps:
	@bash .ci/deps

build: deps
	$(CARGO) build --workspace --bins

# Shows the four pairings delivering the message (the harness report
# replaces this once the harness exists).
run: build
	@for s in python rust; do for c in python rust; do \
	  case $$s in python) srv="python3 python/server.py";; rust) srv=target/debug/server;; esac; \
	  case $$c in python) cli="python3 python/client.py";; rust) cli=target/debug/client;; esac; \
	  out=$$(mktemp); $$srv --host 127.0.0.1 --port 0 > $$out & pid=$$!; \
	  for i in $$(seq 100); do grep -q listening $$out && break; sleep 0.05; done; \
	  port=$$(awk 'NR==1{print $$NF}' $$out); \
	  echo "== $$s server x $$c client (port $$port)"; \
	  $$cli --host 127.0.0.1 --port $$port; wait $$pid; cat $$out; rm -f $$out; \
	done; done

test: deps
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
