package decode

import (
	"math/rand/v2"
	"testing"
)

// TestSFlowRate feeds one source's samples (sequence number, pool,
// declared rate) and checks the rate of the last one.
func TestSFlowRate(t *testing.T) {
	type sample struct{ seq, pool, declared uint32 }
	// stream returns n consecutive samples from seq0 whose pool grows by
	// gap(i) per sample, starting at pool0.
	stream := func(n int, seq0, pool0, declared uint32, gap func(i int) uint32) []sample {
		out := make([]sample, n)
		pool := pool0
		for i := range out {
			pool += gap(i)
			out[i] = sample{seq0 + uint32(i), pool, declared}
		}
		return out
	}
	cat := func(parts ...[]sample) []sample {
		var out []sample
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	fixed := func(g uint32) func(int) uint32 { return func(int) uint32 { return g } }
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(int) uint32 { return uint32(1 + rng.IntN(199)) } // mean 100
	overloaded := stream(50_000, 0, 0, 100, fixed(200))
	last := overloaded[len(overloaded)-1]
	late := cat(stream(5000, 0, 0, 100, fixed(300)), []sample{{4990, 300 * 4991, 100}})
	tests := []struct {
		name       string
		samples    []sample
		wantRate   uint32
		wantPooled bool
		// calmFrom: no sample from this index on may be pooled (0: not checked).
		calmFrom int
	}{
		{"first sample: declared", stream(1, 0, 0, 100, fixed(100)), 100, false, 0},
		{"nothing dropped: declared", stream(5000, 0, 0, 100, fixed(100)), 100, false, 1},
		{"random sampling noise: declared", stream(20000, 0, 0, 100, random), 100, false, 1},
		{"half dropped, too few samples yet: declared", stream(poolMinSamples, 0, 0, 100, fixed(200)), 100, false, 1},
		{"half dropped: pool rate", stream(poolMinSamples+1, 0, 0, 100, fixed(200)), 200, true, 0},
		{"half dropped over windows", stream(3*poolWindow+17, 0, 0, 100, fixed(200)), 200, true, 0},
		{"9 % more: declared", stream(5000, 0, 0, 100, fixed(109)), 100, false, 1},
		{"10 % more: declared", stream(5000, 0, 0, 100, fixed(110)), 100, false, 1},
		{"11 % more: pool rate", stream(poolMinSamples+1, 0, 0, 100, fixed(111)), 111, true, 0},
		// Δpool / Δsequence is rounded to the nearest: 205684/1025 and
		// 205341/1025 (200.67 and 200.33 per sample).
		{"pool rate rounds up", stream(poolMinSamples+2, 0, 0, 100, func(i int) uint32 { return 200 + uint32(min(i%3, 1)) }), 201, true, 0},
		{"pool rate rounds down", stream(poolMinSamples+2, 0, 0, 100, func(i int) uint32 { return 201 - uint32(min(i%3, 1)) }), 200, true, 0},
		{"pool never advances: declared", stream(5000, 0, 0, 100, fixed(0)), 100, false, 1},
		{"pool counts only samples: declared", stream(5000, 0, 0, 100, fixed(1)), 100, false, 1},
		{"no declared rate: left to the default", stream(2000, 0, 0, 0, fixed(50)), 0, false, 1},
		{"pool wraps around 2^32", stream(3000, 0, 1<<32-100_000, 100, fixed(300)), 300, true, 0},
		// At 1:2^20 with four samples in five skipped, the pool grows by
		// more than 2^32 before poolMinSamples samples are measured: the
		// measurement must not wrap (it read 1:2^20, the declared rate).
		{"pool passes 2^32 within the first window", stream(poolMinSamples+1, 0, 0, 1<<20, fixed(5<<20)), 5 << 20, true, 0},
		{"pool passes 2^32 over windows", stream(3*poolWindow, 0, 7, 1<<20, fixed(5<<20)), 5 << 20, true, 0},
		{"late sample: last window's rate", late, 300, true, 0},
		// An overloaded agent restarts healthy (sequence and pool from 0):
		// the old measurement must not leak into the new one.
		{"restart after overload", cat(overloaded, stream(20_000, 0, 0, 100, fixed(100))), 100, false, len(overloaded)},
		{"restart, random skips", cat(stream(30_000, 0, 0, 100, random), stream(20_000, 0, 0, 100, random)), 100, false, 1},
		// The pool goes back while the sequence goes on: a new measurement.
		{"pool goes back", cat(overloaded, stream(3000, last.seq+1, 0, 100, fixed(100))), 100, false, len(overloaded)},
		// The declared rate drops from 1000 to 100 with nothing dropped.
		{"declared rate lowered", cat(stream(10_000, 0, 0, 1000, fixed(1000)), stream(10_000, 10_000, 10_000_000, 100, fixed(100))), 100, false, 1},
		// A forward leap of the sequence is a restart, not 2^20 lost samples.
		{"sequence leaps", cat(overloaded, stream(3000, last.seq+1<<21, last.pool+1, 100, fixed(100))), 100, false, len(overloaded)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &exporterState{pools: make(map[poolKey]*poolState)}
			k := newPoolKey(1, 0, 3)
			var rate uint32
			var pooled bool
			for i, s := range tt.samples {
				rate, pooled = st.sflowRate(k, s.seq, s.pool, s.declared)
				if tt.calmFrom > 0 && i >= tt.calmFrom && pooled {
					t.Fatalf("sample %d (seq %d): scaled by the pool's rate %d, want the declared %d", i, s.seq, rate, s.declared)
				}
			}
			if rate != tt.wantRate || pooled != tt.wantPooled {
				t.Fatalf("rate %d pooled %v, want %d %v", rate, pooled, tt.wantRate, tt.wantPooled)
			}
		})
	}
}

// TestSFlowRateSourcesBounded: past maxPoolSources sources per exporter,
// new sources keep their declared rate and no state grows.
func TestSFlowRateSourcesBounded(t *testing.T) {
	st := &exporterState{pools: make(map[poolKey]*poolState)}
	for src := uint32(0); src < 2*maxPoolSources; src++ {
		for i := uint32(0); i < poolMinSamples+10; i += 10 {
			rate, pooled := st.sflowRate(newPoolKey(0, 0, src), i, 400*(i+1), 100)
			if src >= maxPoolSources && (rate != 100 || pooled) {
				t.Fatalf("source %d beyond the bound: rate %d pooled %v", src, rate, pooled)
			}
		}
	}
	if len(st.pools) != maxPoolSources {
		t.Fatalf("%d sources tracked, want %d", len(st.pools), maxPoolSources)
	}
}

// TestPoolKey: a compact flow sample and an expanded one name the same
// source alike; ids that do not fit the compact form are not tracked.
func TestPoolKey(t *testing.T) {
	if a, b := flowSampleKey(7, 2<<24|513), newPoolKey(7, 2, 513); a != b || a == untracked {
		t.Fatalf("compact %x, expanded %x", a, b)
	}
	if newPoolKey(7, 2, 513) == newPoolKey(8, 2, 513) || newPoolKey(7, 1, 513) == newPoolKey(7, 2, 513) {
		t.Fatal("distinct sources share a key")
	}
	st := &exporterState{pools: make(map[poolKey]*poolState)}
	for _, k := range []poolKey{newPoolKey(1, 256, 1), newPoolKey(1, 0, 1<<24)} {
		if k != untracked {
			t.Fatalf("key %x, want untracked", k)
		}
		for i := uint32(0); i < 3000; i++ {
			if rate, pooled := st.sflowRate(k, i, 400*(i+1), 100); rate != 100 || pooled {
				t.Fatalf("untracked source: rate %d pooled %v", rate, pooled)
			}
		}
	}
	if len(st.pools) != 0 {
		t.Fatalf("%d untracked sources stored", len(st.pools))
	}
}

// TestSFlowRateIdleSourcesMakeRoom: with the table full of sources that
// went quiet, a new source is tracked once they have been idle for
// poolIdleSweep samples, and the sweep runs once per poolIdleSweep samples,
// not once per sample of an untracked source.
func TestSFlowRateIdleSourcesMakeRoom(t *testing.T) {
	st := &exporterState{pools: make(map[poolKey]*poolState)}
	for src := uint32(0); src < maxPoolSources; src++ {
		st.sflowRate(newPoolKey(0, 0, src), 0, 100, 100)
	}
	k := newPoolKey(0, 0, 99999)
	sweeps, swept := 0, st.poolSwept
	var rate uint32
	var pooled bool
	for i := uint32(0); i < poolIdleSweep+2*poolMinSamples; i++ {
		rate, pooled = st.sflowRate(k, i, 200*(i+1), 100)
		if st.poolSwept != swept {
			sweeps, swept = sweeps+1, st.poolSwept
		}
	}
	if !pooled || rate != 200 || len(st.pools) != 1 || sweeps > 2 {
		t.Fatalf("new source: rate %d pooled %v; %d sources tracked, %d sweeps; want 200, true, 1, at most 2", rate, pooled, len(st.pools), sweeps)
	}
}

// TestAboveTolerance: the division-free test agrees with rounding x/n
// down and comparing it as sflowRate did, (rate-declared)*poolTolerance >
// declared, at the edges and at random up to the largest n and declared
// rate.
func TestAboveTolerance(t *testing.T) {
	want := func(x, n uint64, declared uint32) bool {
		return (int64(x/n)-int64(declared))*poolTolerance > int64(declared)
	}
	cases := []struct {
		x, n     uint64
		declared uint32
	}{
		{110, 1, 100}, {111, 1, 100}, {109, 1, 100}, {0, 1, 1}, {1, 1, 1}, {2, 1, 1},
		{110*1024 + 1023, 1024, 100}, {111 * 1024, 1024, 100}, {111*1024 - 1, 1024, 100},
		{1<<32 - 1, 1, 1<<32 - 1}, {(1<<32 - 1) * (1<<21 - 1), 1<<21 - 1, 1<<32 - 1},
		{(1<<32 - 1) * (1<<21 - 1), 1<<21 - 1, 3_900_000_000},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		n := 1 + rng.Uint64N(1<<21-1)
		declared := uint32(1 + rng.Uint64N(1<<32-1))
		if rng.IntN(2) == 0 {
			declared = uint32(1 + rng.IntN(10_000))
		}
		// Around the edge, or anywhere a 32-bit pool can take it.
		x := uint64(declared) * n * 11 / 10
		x = x - min(x, n) + rng.Uint64N(2*n+1)
		if rng.IntN(2) == 0 {
			x = rng.Uint64N(1<<32) + n/2
		}
		cases = append(cases, struct {
			x, n     uint64
			declared uint32
		}{x, n, declared})
	}
	for _, c := range cases {
		if got := aboveTolerance(c.x, c.n, c.declared); got != want(c.x, c.n, c.declared) {
			t.Fatalf("aboveTolerance(%d, %d, %d) = %v, want %v", c.x, c.n, c.declared, got, !got)
		}
	}
}

// TestSFlowRateManySources: sources interleaved at random, more than the
// hot cache holds so that they collide in it, each keep their own
// measurement: each source's agent drops a different share of samples.
func TestSFlowRateManySources(t *testing.T) {
	const sources = 40
	st := &exporterState{pools: make(map[poolKey]*poolState)}
	var seq [sources]uint32
	var got [sources]uint32
	rng := rand.New(rand.NewPCG(5, 6))
	for range sources * 3 * poolMinSamples {
		src := rng.IntN(sources)
		gap := uint32(100 * (1 + src%3)) // 100: declared; 200, 300: pooled
		seq[src]++
		got[src], _ = st.sflowRate(newPoolKey(uint32(src%2), 0, uint32(src)), seq[src], gap*seq[src], 100)
	}
	for src, rate := range got {
		if want := uint32(100 * (1 + src%3)); rate != want {
			t.Fatalf("source %d: rate %d, want %d", src, rate, want)
		}
	}
}

// TestSFlowRateSweptSourceReturns: a hot source that the sweep drops while
// idle is tracked afresh when it comes back (the hot cache must not keep
// the dropped state alive outside the bounded map).
func TestSFlowRateSweptSourceReturns(t *testing.T) {
	st := &exporterState{pools: make(map[poolKey]*poolState)}
	hot := newPoolKey(0, 0, 1)
	for i := uint32(1); i <= poolMinSamples+1; i++ {
		st.sflowRate(hot, i, 200*i, 100)
	}
	for src := uint32(2); src < maxPoolSources+1; src++ {
		st.sflowRate(newPoolKey(0, 0, src), 0, 100, 100)
	}
	// A new source keeps the table full and busy until the idle ones,
	// the hot one among them, are swept.
	k := newPoolKey(0, 0, 99999)
	for i := uint32(0); i < poolIdleSweep+1; i++ {
		st.sflowRate(k, i, 100*(i+1), 100)
	}
	if st.pools[hot] != nil {
		t.Fatal("the idle source was not swept")
	}
	// It comes back restarted: measured afresh, so its first samples keep
	// the declared rate, and it is in the map again.
	if rate, pooled := st.sflowRate(hot, 1, 300, 100); rate != 100 || pooled {
		t.Fatalf("returning source: rate %d pooled %v, want the declared 100", rate, pooled)
	}
	if st.pools[hot] == nil {
		t.Fatal("the returning source is not tracked in the map")
	}
}
