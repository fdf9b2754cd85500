# flowmetrics — the two commands a newcomer needs are `make run` and `make test`.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The build date is the commit's, not the clock's: two builds of one commit
# give the same binary (reproducible), and --version still dates it.
# (in UTC; CREATED is the same instant in RFC 3339, for the image's label).
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d-%H:%M:%S 2>/dev/null || echo unknown)
CREATED    ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=main \
             -X github.com/prometheus/common/version.BuildDate=$(BUILD_DATE)
FUZZTIME  ?= 100000x
ARGS      ?=

IMAGE     ?= flowmetrics:$(VERSION)

OCB       := $(shell $(GO) env GOPATH)/bin/builder
OCB_VERSION := v0.161.0

.PHONY: all build run demo test test-race test-dashboards test-image fuzz vet bench loadtest compare otelcol image clean

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

## test: every test — vet, unit, race, end-to-end with real exporters and a
## built otelcol, dashboards and rules against a real Prometheus, the
## container image under a real Docker engine, short fuzzing
test: vet otelcol test-race test-dashboards test-image fuzz

vet:
	$(GO) vet ./...
	cd dashboards && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

## test-race: all Go tests (unit and end-to-end) with the race detector
test-race:
	$(GO) test -race -count=1 ./...

## test-dashboards: dashboards and rules (own Go module), promtool checks and unit tests
test-dashboards:
	cd dashboards && $(GO) vet ./... && $(GO) test -count=1 ./...
	promtool check rules alerts/flowmetrics.rules.yml
	promtool test rules alerts/tests/*.yml

## image: the container image $(IMAGE): the static binary only, with OCI version labels (see Dockerfile)
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/image/flowmetrics ./cmd/flowmetrics
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) --build-arg CREATED=$(CREATED) -t $(IMAGE) .

## test-image: build the image and check it counts flows sent over 127.0.0.1
test-image: image
	FLOWMETRICS_IMAGE=$(IMAGE) $(GO) test -count=1 -run '^TestContainerImage$$' -v ./cmd/flowmetrics

## otelcol: build the Collector distribution with ocb (cold 2–4 min, warm ~1 min)
otelcol: $(OCB)
	cd cmd/otelcol-flowmetrics && $(OCB) --config builder-config.yaml

$(OCB):
	$(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

## fuzz: run each fuzz target for FUZZTIME (default 100000x: 100,000 inputs; a count, not a duration, see README)
fuzz:
	$(GO) test ./receiver/decode/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./receiver/decode/ -run '^$$' -fuzz '^FuzzFastPathMatchesGoflow2$$' -fuzztime $(FUZZTIME)
	$(GO) test ./receiver/decode/ -run '^$$' -fuzz '^FuzzDirectLayoutMatchesGoflow2$$' -fuzztime $(FUZZTIME)
	$(GO) test ./receiver/decode/ -run '^$$' -fuzz '^FuzzSFlowFastPathMatchesGoflow2$$' -fuzztime $(FUZZTIME)
	$(GO) test ./processor/aggregate/ -run '^$$' -fuzz '^FuzzShortMatchesGeneral$$' -fuzztime $(FUZZTIME)
	$(GO) test ./config/ -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cmd/flowmetrics/ -run '^$$' -fuzz '^FuzzWebConfig$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of every stage, benchstat-friendly (six counts: about a quarter of an hour on two cores)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./processor/... ./receiver/... ./exporter/... | tee bench.out
	@echo "compare two runs with: go run golang.org/x/perf/cmd/benchstat@latest old.out bench.out"

## loadtest: records/s, drops, CPU per million records, peak RSS of bin/flowmetrics under flowgen load
loadtest: build
	$(GO) run ./internal/loadtest --binary $(BIN)/flowmetrics

## compare: the same generated stream through flowmetrics, goflow2 v2.2.6 and nfcapd
compare:
	./scripts/compare.sh

clean:
	rm -rf $(BIN) bench.out cmd/otelcol-flowmetrics/_build
