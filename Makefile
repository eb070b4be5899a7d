# bundle: see README.md. `make demo` runs the whole story offline, `make test` is what CI runs.

GO      ?= go
BIN     := bin/bundle
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Packages under testdata/ are invisible to ./... patterns: name them.
EXTRA   := ./testdata/sample ./testdata/gen
GOFILES  = $(shell git ls-files '*.go')

.PHONY: all build install test unit fuzz e2e demo bench bench-go bench-serve lint vet clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bundle

# install puts bundle where go install does: $(go env GOPATH)/bin.
install:
	$(GO) install -ldflags '$(LDFLAGS)' ./cmd/bundle

# The end-to-end tests run once, forced on (they fail, not skip, when
# docker-registry or skopeo is missing), after the unit tests and fuzzing.
test: lint unit fuzz e2e

vet:
	$(GO) vet ./... $(EXTRA)

unit:
	$(GO) test -race $$($(GO) list ./... | grep -v /internal/e2e) $(EXTRA)

# Every Fuzz target of every package, 5 seconds each (go test fuzzes one
# target of one package per run).
fuzz:
	@set -e; for f in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do \
		d=$$(dirname $$f); \
		for t in $$(grep -oE '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			echo "fuzz $$d $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime 5s -fuzzminimizetime 5s $$d; \
		done; \
	done

e2e:
	BUNDLE_E2E=1 $(GO) test -race -count=1 ./internal/e2e/...

# Export and import through proxies failing 5%, 20% and 35% of requests at
# random (README: A bad link), 100 seeds each; make test runs 20 at 20%.
# The whole log is in bin/soak.log; the failures and figures are printed.
.PHONY: soak
soak:
	@mkdir -p bin
	@BUNDLE_FAULT_SEEDS=100 BUNDLE_FAULT_RATES=0.05,0.2,0.35 $(GO) test -race -count=1 -timeout 90m -v \
		-run '^TestTransfersSurviveAFaultyLink$$' ./internal/roundtrip/ >bin/soak.log 2>&1; \
		status=$$?; grep -E '^(--- FAIL|ok|FAIL)|faults_test.go' bin/soak.log; exit $$status

demo: build
	BUNDLE=$(BIN) ./scripts/demo.sh

# The whole-tool benchmark of issue 6: a generated data set (SIZE, default
# 2GiB) through export, import, verify and inspect beside the machine's
# floors measured in the same run; results are appended to docs/BENCHMARKS.md.
SIZE ?= 2GiB
# SCALE=images measures many tiny signed images instead (issue 16), at the
# counts in IMAGES, beside the regctl copy loop the issue compares import
# with (regctl installed into bin/, not a module of ours); 10000 takes
# several minutes.
SCALE ?=
IMAGES ?= 100,1000,10000
REGCTL_VERSION ?= v0.11.7
bench: build
ifeq ($(SCALE),images)
	GOBIN=$(CURDIR)/bin $(GO) install github.com/regclient/regclient/cmd/regctl@$(REGCTL_VERSION)
	$(GO) run ./internal/bench/cmd/bundlebench -scale images -images $(IMAGES) -bundle $(BIN) -regctl bin/regctl -out docs/BENCHMARKS.md
else
	$(GO) run ./internal/bench/cmd/bundlebench -size $(SIZE) -bundle $(BIN) -out docs/BENCHMARKS.md
endif

# Issue 15's check of bundle serve: 32 concurrent pulls of a SIZE bench set
# from bundle serve FILE.tar.zst against docker-registry serving the same
# set imported; prints the throughput ratio, serve's peak RSS and the time
# to first byte of the set's large layer (1 GiB from SIZE=2GiB on).
bench-serve:
	BUNDLE_E2E=1 BUNDLE_SERVE_BENCH=$(SIZE) $(GO) test -run '^$$' -bench PullsFromBundleVsDistribution -benchtime 1x -timeout 60m ./internal/serve/

# The per-package Go benchmarks (writer, reader, export, import).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: vet
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@# No build output or other binary over 1 MiB belongs in the repository.
	@big=$$(git ls-files -z | xargs -0 -r sh -c 'for f; do [ -f "$$f" ] && [ $$(stat -c %s "$$f") -gt 1048576 ] && ! grep -Iq . "$$f" && echo "$$f"; done' sh); \
		if [ -n "$$big" ]; then echo "binary files over 1 MiB are tracked: $$big"; exit 1; fi

clean:
	rm -rf bin
