# flowmetrics — the two commands a newcomer needs are `make run` and `make test`.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=main
FUZZTIME  ?= 10s
ARGS      ?=

.PHONY: all build run demo test test-unit test-race test-e2e fuzz vet bench clean

all: build

## build: compile bin/flowmetrics
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/flowmetrics ./cmd/flowmetrics

## run: run the exporter on its defaults (flows on :2055, :4739, :6343; /metrics on :9155)
run: build
	./$(BIN)/flowmetrics $(ARGS)

## demo: run the exporter and feed it real softflowd exports of a generated pcap
demo: build
	./examples/demo.sh

## test: every test — vet, unit, race, end-to-end with real exporters, short fuzzing
test: vet test-race fuzz

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

## test-race: all Go tests (unit and end-to-end) with the race detector
test-race:
	$(GO) test -race -count=1 ./...

## fuzz: run each fuzz target for FUZZTIME (default 10s)
fuzz:
	$(GO) test ./receiver/decode/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./config/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of every stage, benchstat-friendly
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./processor/... ./receiver/... ./exporter/... | tee bench.out

clean:
	rm -rf $(BIN) bench.out
