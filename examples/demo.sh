#!/usr/bin/env bash
# make demo: run flowmetrics on its defaults and feed it real NetFlow v9
# exports: softflowd replays a generated pcap every few seconds (for ten
# minutes at most). Ctrl-C stops both. FLOWMETRICS=<path> runs another
# binary than bin/flowmetrics (the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v softflowd >/dev/null && [ ! -x /usr/sbin/softflowd ]; then
  echo "the demo needs softflowd: sudo apt-get install softflowd" >&2
  exit 1
fi
PATH="$PATH:/usr/sbin"
tmp=$(mktemp -d)
go run ./internal/testkit/genpcap -o "$tmp/demo.pcap"

"${FLOWMETRICS:-./bin/flowmetrics}" --web.listen-address=127.0.0.1:9155 &
fm=$!
cleanup() { kill "$fm" 2>/dev/null || true; wait "$fm" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

# Make sure it is this flowmetrics that serves :9155: with a port taken
# (`make run` still running in another terminal, say) it exits at once, and
# another process may be answering on :9155.
ready=
for _ in $(seq 50); do
  kill -0 "$fm" 2>/dev/null || break
  curl -sf 127.0.0.1:9155/-/ready >/dev/null && { ready=1; break; }
  sleep 0.1
done
sleep 0.5 # a web port already taken ends it only after its flow sockets drain
if [ -z "$ready" ] || ! kill -0 "$fm" 2>/dev/null; then
  echo >&2
  echo "the demo's flowmetrics did not start (its error is above): stop whatever holds UDP 2055, 4739, 6343 or TCP 9155 (another flowmetrics?) and run make demo again" >&2
  exit 1
fi
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
