# onair: `make run` to try it, `make test` to check everything. See README.md.
GO       ?= go
BIN      := bin/onair
UI_DIR   := web/ui
UI_DEPS  := $(UI_DIR)/node_modules/.package-lock.json
UI_OUT   := $(UI_DIR)/dist/manifest.json
UI_SRC   := $(wildcard $(UI_DIR)/src/* $(UI_DIR)/src/lib/*) $(UI_DIR)/build.mjs
# The browser tests' driver (playwright-core, run against Debian's Chromium).
E2E_DIR  := $(UI_DIR)/e2e
E2E_DEPS := $(E2E_DIR)/node_modules/.package-lock.json
GO_SRC   := $(shell find . -name '*.go' -not -path './.tools/*' -not -path '*/node_modules/*') go.mod go.sum
STATICCHECK := $(CURDIR)/.tools/bin/staticcheck-v0.8.2
# Test timeouts: unit tests are quick; end-to-end tests publish real streams.
TEST_FLAGS ?= -count=1 -timeout=30m

.PHONY: all build run test unit e2e bench lint fmt ui e2e-deps deps tools clean

all: build

build: $(BIN)

$(BIN): $(GO_SRC) $(UI_OUT) $(wildcard web/templates/*)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/onair

ui: $(UI_OUT)

$(UI_DEPS): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	cd $(UI_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_OUT): $(UI_DEPS) $(UI_SRC)
	cd $(UI_DIR) && npm run --silent build

e2e-deps: $(E2E_DEPS)

$(E2E_DEPS): $(E2E_DIR)/package.json $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Starts onair with the documented default config, a local MongoDB-compatible server and
# a demo stream, and prints where to point OBS and the browser.
run: build
	@scripts/run.sh

# Everything CI checks: lint, unit tests, end-to-end tests with ffmpeg, real servers and
# Chromium. Installs missing system packages (scripts/deps.sh) and builds the test servers
# (scripts/tools.sh) first.
# End-to-end tests run after the others, on the binary just built, so that their real
# servers and ffmpeg publishers do not compete with the unit tests for the CPU.
test: deps tools build e2e-deps lint
	$(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -v /cmd/onair/e2e)
	ONAIR_TEST_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) ./cmd/onair/e2e/

deps:
	@scripts/deps.sh

tools:
	@scripts/tools.sh

lint: $(STATICCHECK) $(UI_OUT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

$(STATICCHECK):
	@mkdir -p $(dir $@)
	GOBIN=$(CURDIR)/.tools/bin/sc-tmp $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	mv $(CURDIR)/.tools/bin/sc-tmp/staticcheck $@ && rmdir $(CURDIR)/.tools/bin/sc-tmp

# Go benchmarks plus the load scripts that measure onair against its peers; each rewrites
# its section of BENCHMARKS.md and writes .artifacts/bench/<name>.json. They run one after
# the other (BENCHES=record make bench runs some); a failing one does not stop the next,
# and the target fails at the end if any did.
BENCH_BIN := bin/bench
BENCHES   ?= live chat cluster-chat idle record cluster-hls cluster-churn web abuse ladder

bench: build tools e2e-deps
	@scripts/deps.sh bench
	CGO_ENABLED=0 $(GO) build -o $(BENCH_BIN) ./scripts/bench
	@failed=""; \
	$(GO) test -run='^$$' -bench=. -benchmem ./... || failed="$$failed go-test-bench"; \
	for b in $(BENCHES); do \
		echo "== bench $$b"; \
		$(BENCH_BIN) $$b -onair $(BIN) || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

clean:
	rm -rf bin .artifacts
	find $(UI_DIR)/dist -type f ! -name README.md -delete
