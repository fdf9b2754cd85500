package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRates(t *testing.T) {
	got, err := parseRates("200000, 400000,0")
	if err != nil || !slices.Equal(got, []float64{200000, 400000, 0}) {
		t.Fatalf("parseRates = %v, %v", got, err)
	}
	for _, bad := range []string{"-5", "abc", "1e5,", "Inf", "NaN"} {
		if got, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) = %v, want an error", bad, got)
		}
	}
}

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		steps []stepResult
		want  []string
	}{
		{"no loss", []stepResult{{rate: 200000}, {rate: 399000}},
			[]string{"v9     zero-loss: 399000 records/s (highest processed rate of a step that lost nothing)"}},
		{"only the last step lost", []stepResult{{rate: 200000}, {rate: 2500000, lost: 10, busy: 0.99}},
			[]string{"v9     zero-loss: 200000 records/s (highest processed rate of a step that lost nothing)",
				"v9     saturated: 2500000 records/s processed at 99 % CPU in a step that lost records (the collector's capacity if its CPU was near 100 % per GOMAXPROCS, else the sender's or the machine's limit)"}},
		{"socket drops are loss; the busiest lossy step; the spread of the lossy ones at max",
			[]stepResult{{rate: 300000, offered: 300000, drops: 5, busy: 0.4, counted: 1e6, cpu: 1.5}, {rate: 3100000, lost: 7, busy: 1, counted: 2e6, cpu: 0.6}, {rate: 2900000, lost: 9, busy: 1, counted: 2e6, cpu: 0.8}},
			[]string{"v9     zero-loss: 0 records/s (highest processed rate of a step that lost nothing)",
				"v9     saturated: 3100000 records/s processed at 100 % CPU in a step that lost records (the collector's capacity if its CPU was near 100 % per GOMAXPROCS, else the sender's or the machine's limit)",
				"v9     saturated in 2 steps offered max: median 3000000 records/s (2900000–3100000), 0.35 CPU µs per record (0.30–0.40)"}},
		{"rounds: an odd count's median; steps that lost nothing left out",
			[]stepResult{{rate: 2000000, busy: 0.7}, {rate: 2400000, lost: 1, busy: 1, counted: 3e6, cpu: 1.2}, {rate: 2100000, busy: 0.8}, {rate: 3000000, lost: 2, busy: 1, counted: 3e6, cpu: 0.9}, {rate: 2700000, lost: 2, busy: 1, counted: 3e6, cpu: 1.5}},
			[]string{"v9     zero-loss: 2100000 records/s (highest processed rate of a step that lost nothing)",
				"v9     saturated: 3000000 records/s processed at 100 % CPU in a step that lost records (the collector's capacity if its CPU was near 100 % per GOMAXPROCS, else the sender's or the machine's limit)",
				"v9     saturated in 3 steps offered max: median 2700000 records/s (2400000–3000000), 0.40 CPU µs per record (0.30–0.50)"}},
		{"rounds of two offered rates, both lossy: the spread of the higher one only",
			[]stepResult{{rate: 700000, offered: 800000, lost: 3, busy: 1, counted: 1e6, cpu: 2}, {rate: 2600000, offered: 2000000, lost: 1, busy: 1, counted: 1e6, cpu: 0.5},
				{rate: 750000, offered: 800000, lost: 3, busy: 1, counted: 1e6, cpu: 2}, {rate: 2800000, offered: 2000000, lost: 1, busy: 1, counted: 1e6, cpu: 0.3}},
			[]string{"v9     zero-loss: 0 records/s (highest processed rate of a step that lost nothing)",
				"v9     saturated: 2800000 records/s processed at 100 % CPU in a step that lost records (the collector's capacity if its CPU was near 100 % per GOMAXPROCS, else the sender's or the machine's limit)",
				"v9     saturated in 2 steps offered 2000000: median 2700000 records/s (2600000–2800000), 0.40 CPU µs per record (0.30–0.50)"}},
	} {
		if got := summary("v9", tt.steps); !slices.Equal(got, tt.want) {
			t.Errorf("%s: summary =\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

func TestLowestRate(t *testing.T) {
	for _, tt := range []struct {
		rates []float64
		want  int
	}{
		{[]float64{200000, 400000, 0}, 0},
		{[]float64{800000, 200000, 400000}, 1},
		{[]float64{0, 500000}, 1},
		{[]float64{0}, 0},
	} {
		if got := lowestRate(tt.rates); got != tt.want {
			t.Errorf("lowestRate(%v) = %d, want %d", tt.rates, got, tt.want)
		}
	}
}

func TestStopped(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), 0, errTimeout)
	defer cancel()
	<-ctx.Done()
	if err := stopped(ctx); !errors.Is(err, errTimeout) {
		t.Errorf("stopped after the timeout = %v", err)
	}
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel = context.WithTimeoutCause(parent, time.Hour, errTimeout)
	defer cancel()
	cancelParent()
	if err := stopped(ctx); err == nil || errors.Is(err, errTimeout) {
		t.Errorf("stopped after a cancel = %v, want interrupted", err)
	}
}

func TestParseProtocols(t *testing.T) {
	got, err := parseProtocols("v5, ipfix,sflow")
	if err != nil || !slices.Equal(got, []string{"v5", "ipfix", "sflow"}) {
		t.Fatalf("parseProtocols = %v, %v", got, err)
	}
	for _, bad := range []string{"v7", "v5,", "netflow"} {
		if got, err := parseProtocols(bad); err == nil {
			t.Errorf("parseProtocols(%q) = %v, want an error", bad, got)
		}
	}
}

// TestEqualBuffers: the comparison raises the kernel's default and maximum
// receive buffers to flowmetrics' own for its duration (goflow2 sets none,
// nfcapd's is capped by rmem_max), leaves larger values alone, puts the
// old values back, and changes nothing when it cannot write them.
func TestEqualBuffers(t *testing.T) {
	dir := t.TempDir()
	core := filepath.Join(dir, "net", "core")
	if err := os.MkdirAll(core, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(core, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(core, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	write("rmem_default", "212992")
	write("rmem_max", "67108864")
	restore, err := equalBuffers(dir, 33554432)
	if err != nil {
		t.Fatal(err)
	}
	if got := read("rmem_default"); got != "33554432" {
		t.Errorf("rmem_default during the comparison = %s, want 33554432", got)
	}
	if got := read("rmem_max"); got != "67108864" {
		t.Errorf("rmem_max during the comparison = %s, want the larger 67108864 kept", got)
	}
	restore()
	if a, b := read("rmem_default"), read("rmem_max"); a != "212992" || b != "67108864" {
		t.Errorf("after the comparison rmem_default = %s, rmem_max = %s; want 212992 and 67108864 back", a, b)
	}
	if _, err := equalBuffers(t.TempDir(), 33554432); err == nil {
		t.Error("equalBuffers without the sysctl files: no error")
	}
}
