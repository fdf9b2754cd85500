package main

import (
	be "encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/malformed from the generators in this file")

func be16(v int) []byte { return be.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int) []byte { return be.BigEndian.AppendUint32(nil, uint32(v)) }

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ipfix builds an IPFIX message around raw sets.
func ipfix(sets ...[]byte) []byte {
	body := join(sets...)
	return join(be16(10), be16(16+len(body)), be32(1700000000), be32(0), be32(99), body)
}

// malformedCorpus is the hostile input the exporter must survive: file name
// (its prefix up to the first '.' is the reason it must be counted under,
// or the reasons joined by '+': a refused template's data set in the same
// datagram is also skipped as template_missing) → datagram. Regenerate
// testdata with `go test -run TestMalformedCorpus -update`.
func malformedCorpus() map[string][]byte {
	rng := rand.New(rand.NewPCG(42, 42))
	random := make([]byte, 1024)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	random[0], random[1] = 0x42, 0x42 // not a known version
	v5 := join(be16(5), be16(2), make([]byte, 20), make([]byte, 48))
	return map[string][]byte{
		"unknown_version.empty":                 {},
		"unknown_version.one-byte":              {5},
		"unknown_version.v7":                    join(be16(7), make([]byte, 40)),
		"unknown_version.random-1k":             random,
		"unknown_version.http":                  []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"truncated.v5-header":                   join(be16(5), be16(1), be32(0)),
		"truncated.v5-records":                  v5,
		"malformed.v5-count-65535":              join(be16(5), be16(65535), make([]byte, 60)),
		"truncated.v9-header":                   join(be16(9), be16(1), be32(0)),
		"truncated.ipfix-length-beyond":         join(be16(10), be16(4000), make([]byte, 20)),
		"malformed.ipfix-length-below-header":   join(be16(10), be16(4), make([]byte, 20)),
		"malformed.ipfix-set-length-short":      ipfix(join(be16(2), be16(2))),
		"truncated.ipfix-template-65535-fields": ipfix(join(be16(2), be16(12), be16(256), be16(65535), be16(1), be16(4))),
		"template_missing.ipfix-data-first":     ipfix(join(be16(300), be16(12), make([]byte, 8))),
		"malformed.sflow-expanded-4g-records": join(be32(5), be32(1), []byte{192, 0, 2, 50}, be32(0), be32(1), be32(1000), be32(1),
			be32(3), be32(48), be32(1), be32(0), be32(1), be32(1), be32(0), be32(0), be32(0), be32(0), be32(0), be32(0), be32(-1), be32(0)),
		"malformed.sflow-ip-version-9":                         join(be32(5), be32(9), make([]byte, 40)),
		"template_invalid+template_missing.ipfix-no-fields":    ipfix(join(be16(2), be16(8), be16(256), be16(0)), join(be16(256), be16(20), make([]byte, 16))),
		"template_invalid+template_missing.ipfix-zero-lengths": ipfix(join(be16(2), be16(16), be16(257), be16(2), be16(1), be16(0), be16(2), be16(0)), join(be16(257), be16(12), make([]byte, 8))),
	}
}

func TestMalformedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "malformed")
	corpus := malformedCorpus()
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range corpus {
			if err := os.WriteFile(filepath.Join(dir, name+".bin"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) != len(corpus) {
		t.Fatalf("testdata/malformed has %d files, the corpus %d (run with -update): %v", len(files), len(corpus), err)
	}
}

// TestHostileCorpusBesideGoodExporter sends every file of the checked-in
// malformed corpus many times from 127.0.0.3 while softflowd exports from
// 127.0.0.1. Each datagram is counted once under the reason its file name
// states, the process keeps serving, and the good exporter's totals stay
// exact.
func TestHostileCorpusBesideGoodExporter(t *testing.T) {
	testkit.SkipIfMissing(t, "softflowd")
	files, _ := filepath.Glob(filepath.Join("testdata", "malformed", "*.bin"))
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	const rounds = 25
	want := map[string]float64{}
	var dgs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range strings.Split(strings.SplitN(filepath.Base(f), ".", 2)[0], "+") {
			want[r] += rounds
		}
		dgs = append(dgs, b)
	}
	pcap, truth := writePcap(t, testkit.Spec{Seed: 7, IPv6: true})
	in := start(t)
	src, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(in.flowAddr))
	done := make(chan error, 1)
	go func() { done <- testkit.RunSoftflowd(ctxFor(t), pcap, in.flowAddr, 10, 0) }()
	for r := 0; r < rounds; r++ {
		for _, b := range dgs {
			if _, err := src.WriteToUDP(b, dst); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mfs := in.settle(t, 1)
	if got := sum(mfs, "flow_exporter_bytes_total", map[string]string{"exporter": "127.0.0.1"}); got != float64(truth.Total.Bytes) {
		t.Errorf("good exporter: %v bytes, want %v", got, truth.Total.Bytes)
	}
	if got := sum(mfs, "flowmetrics_decode_errors_total", map[string]string{"exporter": "127.0.0.1"}); got != 0 {
		t.Errorf("good exporter: %v decode errors", got)
	}
	got := by(mfs, "flowmetrics_decode_errors_total", "reason")
	var reasons []string
	for r := range want {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		if g := sum(mfs, "flowmetrics_decode_errors_total", map[string]string{"exporter": "127.0.0.3", "reason": r}); g != want[r] {
			t.Errorf("reason %s: %v, want %v (all: %v)", r, g, want[r], got)
		}
	}
	if g := sum(mfs, "flowmetrics_datagrams_total", map[string]string{"exporter": "127.0.0.3"}); g != float64(rounds*len(dgs)) {
		t.Errorf("hostile datagrams counted %v, want %d", g, rounds*len(dgs))
	}
	if g := sum(mfs, "flow_exporter_flows_total", map[string]string{"exporter": "127.0.0.3"}); g != 0 {
		t.Errorf("hostile input produced %v flows", g)
	}
}

// v5Random builds a v5 datagram of 30 records with random addresses.
func v5Random(rng *rand.Rand, seq int) []byte {
	b := join(be16(5), be16(30), be32(0), be32(1700000000), be32(0), be32(seq), make([]byte, 4))
	for i := 0; i < 30; i++ {
		r := make([]byte, 48)
		be.BigEndian.PutUint32(r, rng.Uint32())
		be.BigEndian.PutUint32(r[4:], rng.Uint32())
		be.BigEndian.PutUint32(r[16:], 1)
		be.BigEndian.PutUint32(r[20:], 100)
		be.BigEndian.PutUint16(r[32:], uint16(rng.IntN(65536)))
		be.BigEndian.PutUint16(r[34:], uint16(rng.IntN(65536)))
		r[38] = byte(rng.IntN(256))
		b = append(b, r...)
	}
	return b
}

func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%d", &kb)
			return kb
		}
	}
	return 0
}

// TestFloodStaysBounded floods the exporter, for a bounded time, with random
// addresses and ports from 300 exporter addresses and with a template flood
// from one of them, then checks every cap held: exporters tracked, templates
// per exporter, series per family, "other" series, and resident memory.
func TestFloodStaysBounded(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "flood.yml")
	writeFile(t, cfgPath, `
max_exporters: 64
max_templates_per_exporter: 16
families:
  - {name: src_host, labels: [exporter, src_addr], limit: 200}
  - {name: application, labels: [proto, port], limit: 100}
`)
	in := start(t, "--config.file="+cfgPath)
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(in.flowAddr))
	rng := rand.New(rand.NewPCG(7, 7))
	deadline := time.Now().Add(8 * time.Second)
	sent := 0
	for e := 0; e < 300 && time.Now().Before(deadline); e++ {
		src, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(e >> 8), byte(e)}), 0)))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if _, err := src.WriteToUDP(v5Random(rng, i*30), dst); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if e == 0 { // template flood: 500 distinct template ids
			for id := 256; id < 756; id++ {
				tpl := ipfix(join(be16(2), be16(12), be16(id), be16(1), be16(1), be16(4)))
				if _, err := src.WriteToUDP(tpl, dst); err != nil {
					t.Fatal(err)
				}
			}
		}
		src.Close()
		time.Sleep(2 * time.Millisecond)
	}
	mfs := in.settle(t, 1)
	if got := sum(mfs, "flowmetrics_exporters", nil); got > 64 {
		t.Errorf("exporters tracked = %v, cap 64", got)
	}
	if got := sum(mfs, "flowmetrics_exporters_evicted_total", nil); got < 300-64 {
		t.Errorf("exporters evicted = %v, want at least %d", got, 300-64)
	}
	for fam, limit := range map[string]float64{"src_host": 200, "application": 100} {
		if got := sum(mfs, "flowmetrics_family_series", map[string]string{"family": fam}); got > limit {
			t.Errorf("%s series = %v, limit %v", fam, got, limit)
		}
		if got := sum(mfs, "flowmetrics_family_other_series", map[string]string{"family": fam}); got > 65 {
			t.Errorf("%s other series = %v, want at most 64+1", fam, got)
		}
		if got := sum(mfs, "flowmetrics_family_other_records_total", map[string]string{"family": fam}); got == 0 {
			t.Errorf("%s: nothing folded into other under a flood", fam)
		}
	}
	for _, m := range mfs["flowmetrics_templates"].GetMetric() {
		if value(m) > 16 {
			t.Errorf("templates for %v = %v, cap 16", labelsOf(m), value(m))
		}
	}
	// Every byte still lands in exactly one series of every family.
	total := sum(mfs, "flow_exporter_bytes_total", nil)
	for _, fam := range []string{"src_host", "application"} {
		if got := sum(mfs, "flow_"+fam+"_bytes_total", nil); got != total {
			t.Errorf("%s sums to %v, exporter totals to %v", fam, got, total)
		}
	}
	if rss := rssKiB(t, in.cmd.Process.Pid); rss > 150*1024 {
		t.Errorf("RSS %d KiB after the flood, bound 150 MiB", rss)
	}
	t.Logf("sent %d datagrams (%d records) from 300 exporters; RSS %d KiB", sent, sent*30, rssKiB(t, in.cmd.Process.Pid))
}

// TestOverloadShedsAndKeepsServing blasts more datagrams at one socket with
// a small receive buffer than it can take: the kernel drops the excess, the
// exporter counts those drops (read from the kernel) so that datagrams
// counted plus dropped equals datagrams sent, exactly, and /metrics keeps
// answering during the blast.
func TestOverloadShedsAndKeepsServing(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "overload.yml")
	writeFile(t, cfgPath, "sockets: 1\nreceive_buffer_bytes: 65536\n")
	in := start(t, "--config.file="+cfgPath)
	const sent = 20000
	stop := make(chan struct{})
	scrapes, failures := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := testkit.Scrape(in.web + "/metrics"); err != nil {
				failures++
			}
			scrapes++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	conn, err := net.Dial("udp", in.flowAddr)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	dg := v5Random(rng, 0)
	for i := 0; i < sent; i++ {
		be.BigEndian.PutUint32(dg[16:], uint32(30*i))
		if _, err := conn.Write(dg); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	close(stop)
	<-done
	mfs := in.settle(t, 1)
	got := sum(mfs, "flowmetrics_datagrams_total", nil)
	drops := sum(mfs, "flowmetrics_socket_drops_total", nil)
	if drops == 0 {
		t.Logf("no drops: the exporter kept up with %d datagrams (a fast machine); nothing to shed", sent)
	}
	if got+drops != sent {
		t.Errorf("counted %v + dropped %v = %v, sent %d", got, drops, got+drops, sent)
	}
	if failures > 0 {
		t.Errorf("%d of %d scrapes failed during the blast", failures, scrapes)
	}
	if buf := sum(mfs, "flowmetrics_socket_receive_buffer_bytes", nil); buf > 4*65536 {
		t.Errorf("effective receive buffer %v, asked 65536", buf)
	}
	t.Logf("sent %d, counted %v, kernel drops %v, %d scrapes during the blast", sent, got, drops, scrapes)
}
