package main

import (
	"context"
	"errors"
	"slices"
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
