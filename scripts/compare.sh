#!/usr/bin/env bash
# compare.sh runs the same flowgen stream, over 127.0.0.1 only, through
# flowmetrics, goflow2 v2.2.6 and nfcapd (when installed), one fresh process
# per step, and prints CPU seconds per million records and the highest
# zero-loss rate of each, as ratios to flowmetrics. Bounded by --timeout.
# Run as root, it raises net.core.rmem_default and rmem_max to 32 MiB while
# it runs (restored after), so that every collector gets the receive buffer
# flowmetrics sets for itself (goflow2 has no setting of its own).
#
#   scripts/compare.sh                      # defaults below
#   RECORDS=500000 RATES=100000,200000 scripts/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
RECORDS=${RECORDS:-1000000}
RATES=${RATES:-200000,400000,800000}
PROTOCOLS=${PROTOCOLS:-v5,v9,ipfix,sflow}
TIMEOUT=${TIMEOUT:-5m}
GOFLOW2=${GOFLOW2:-$($GO env GOPATH)/bin/goflow2}

if [[ ! -x $GOFLOW2 ]]; then
	echo "installing goflow2 v2.2.6 into $($GO env GOPATH)/bin" >&2
	$GO install github.com/netsampler/goflow2/v2/cmd/goflow2@v2.2.6
fi
command -v nfcapd >/dev/null || echo "nfcapd not found: comparing flowmetrics and goflow2 only" >&2

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
$GO build -o "$bin/flowmetrics" ./cmd/flowmetrics
# Not exec: the EXIT trap above must still run to remove the built binary.
$GO run ./internal/loadtest --compare --binary "$bin/flowmetrics" --goflow2 "$GOFLOW2" \
	--protocols "$PROTOCOLS" --rates "$RATES" --records "$RECORDS" --timeout "$TIMEOUT"
