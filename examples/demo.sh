#!/usr/bin/env bash
# make demo: run flowmetrics on its defaults and feed it real NetFlow v9
# exports: softflowd replays a generated pcap every few seconds (for ten
# minutes at most). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v softflowd >/dev/null && [ ! -x /usr/sbin/softflowd ]; then
  echo "the demo needs softflowd: sudo apt-get install softflowd" >&2
  exit 1
fi
PATH="$PATH:/usr/sbin"
tmp=$(mktemp -d)
go run ./internal/testkit/genpcap -o "$tmp/demo.pcap"

./bin/flowmetrics --web.listen-address=127.0.0.1:9155 &
fm=$!
cleanup() { kill "$fm" 2>/dev/null || true; wait "$fm" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

for _ in $(seq 50); do curl -sf 127.0.0.1:9155/-/ready >/dev/null && break; sleep 0.1; done
echo
echo "flowmetrics is serving http://127.0.0.1:9155/metrics; replaying $tmp/demo.pcap through softflowd (NetFlow v9, 1:10 sampling) every 5s"
for i in $(seq 120); do
  softflowd -d -c none -a -r "$tmp/demo.pcap" -n 127.0.0.1:2055 -v 9 -s 10 -p "$tmp/softflowd.pid" >/dev/null 2>&1
  if [ "$i" = 1 ]; then
    sleep 1
    echo
    echo "--- a few series after the first replay ---"
    curl -s 127.0.0.1:9155/metrics | grep -E '^(flow_protocol_bytes_total|flow_src_host_bytes_total|flowmetrics_sampling_rate)' | head -20
    echo "--- (Ctrl-C to stop) ---"
  fi
  sleep 5
done
