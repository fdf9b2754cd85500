package decode

import (
	"math/rand/v2"
	"testing"
)

// TestSFlowRate feeds one source's samples (sequence number, pool,
// declared rate) and checks the rate of the last one.
func TestSFlowRate(t *testing.T) {
	type sample struct{ seq, pool, declared uint32 }
	// stream returns n consecutive samples from seq 0 whose pool grows by
	// gap(i) per sample, starting at pool0.
	stream := func(n int, pool0, declared uint32, gap func(i int) uint32) []sample {
		out := make([]sample, n)
		pool := pool0
		for i := range out {
			pool += gap(i)
			out[i] = sample{uint32(i), pool, declared}
		}
		return out
	}
	fixed := func(g uint32) func(int) uint32 { return func(int) uint32 { return g } }
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(int) uint32 { return uint32(1 + rng.IntN(199)) } // mean 100
	restarted := append(stream(3000, 0, 100, fixed(200)), sample{5, 1000, 100})
	late := stream(3000, 0, 100, fixed(300))
	late = append(late, sample{2990, late[2990].pool, 100})
	tests := []struct {
		name       string
		samples    []sample
		wantRate   uint32
		wantPooled bool
	}{
		{"first sample: declared", stream(1, 0, 100, fixed(100)), 100, false},
		{"nothing dropped: declared", stream(5000, 0, 100, fixed(100)), 100, false},
		{"random sampling noise: declared", stream(20000, 0, 100, random), 100, false},
		{"half dropped, too few samples yet: declared", stream(poolMinSamples, 0, 100, fixed(200)), 100, false},
		{"half dropped: pool rate", stream(poolMinSamples+1, 0, 100, fixed(200)), 200, true},
		{"half dropped over windows", stream(3*poolWindow+17, 0, 100, fixed(200)), 200, true},
		{"9 % more: declared", stream(5000, 0, 100, fixed(109)), 100, false},
		{"pool never advances: declared", stream(5000, 0, 100, fixed(0)), 100, false},
		{"pool counts only samples: declared", stream(5000, 0, 100, fixed(1)), 100, false},
		{"no declared rate: pool rate", stream(2000, 0, 0, fixed(50)), 50, true},
		{"no declared rate, no pool: 0", stream(2000, 0, 0, fixed(0)), 0, false},
		{"pool wraps around 2^32", stream(3000, 1<<32-100_000, 100, fixed(300)), 300, true},
		{"agent restart: declared again", restarted, 100, false},
		{"late sample: pool rate kept", late, 300, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &exporterState{pools: make(map[poolKey]*poolState)}
			k := newPoolKey(1, 0, 3)
			var rate uint32
			var pooled bool
			for _, s := range tt.samples {
				rate, pooled = st.sflowRate(k, s.seq, s.pool, s.declared)
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
