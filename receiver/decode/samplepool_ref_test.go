package decode

import (
	"math/rand/v2"
	"testing"
)

// refPools is sflowRate written the plain way: a map lookup per sample and
// a division per rate, as it was before the hot cache and aboveTolerance.
type refPools struct {
	pools     map[poolKey]*poolState
	poolTick  uint32
	poolSwept uint32
}

func (st *refPools) sflowRate(k poolKey, seq, pool, declared uint32) (uint32, bool) {
	st.poolTick++
	if declared == 0 || k == untracked {
		return declared, false
	}
	s := st.pools[k]
	if s == nil {
		if len(st.pools) >= maxPoolSources {
			st.sweepPools()
		}
		if len(st.pools) < maxPoolSources {
			st.pools[k] = &poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
		}
		return declared, false
	}
	s.seen = st.poolTick
	rate := s.rate
	d := int32(seq - s.last)
	switch {
	case declared != s.declared:
		*s = poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
		return declared, false
	case d > 0 && d < poolRestart && pool-s.lastPool < poolMaxDelta:
		s.span += uint64(pool - s.lastPool)
		s.last, s.lastPool = seq, pool
		if n, dp := seq-s.seq0, s.span; n >= poolMinSamples {
			rate = uint32((dp + uint64(n)/2) / uint64(n))
			if n >= poolWindow || dp >= poolMaxDelta {
				s.seq0, s.span, s.rate = seq, 0, rate
			}
		}
	case d <= 0 && d > -poolLate:
	default:
		*s = poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
		return declared, false
	}
	if (int64(rate)-int64(declared))*poolTolerance <= int64(declared) {
		return declared, false
	}
	return rate, true
}

func (st *refPools) sweepPools() {
	if st.poolTick-st.poolSwept < poolIdleSweep && st.poolSwept != 0 {
		return
	}
	st.poolSwept = st.poolTick
	for k, s := range st.pools {
		if st.poolTick-s.seen >= poolIdleSweep {
			delete(st.pools, k)
		}
	}
}

// TestSFlowRateMatchesReference runs sflowRate and refPools side by side
// over random streams of a few to thousands of sources (colliding in the
// hot cache, filling the map, swept), with skipped, late and repeated
// samples, restarts, pool leaps, declared rates up to 2^32-1 changing,
// floods of new sources that sweep a hot one while its cache entry stays,
// and rates near 2^32: the results and the map's states must be the same,
// and every hot entry the map's.
func TestSFlowRateMatchesReference(t *testing.T) {
	declaredRates := []uint32{1, 9, 10, 100, 1000, 1 << 31, 1<<32 - 1}
	pooled := 0
	for seed := uint64(1); seed <= 16; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		nsrc := []int{1, 3, 16, 17, 40, 600, 2000, 513}[seed%8]
		type source struct {
			key                 poolKey
			seq, pool, declared uint32
			gap                 uint32
		}
		srcs := make([]source, nsrc)
		for i := range srcs {
			srcs[i] = source{key: poolKey(rng.Uint64N(4)<<32 | uint64(i)), seq: rng.Uint32(), pool: rng.Uint32(),
				declared: declaredRates[rng.IntN(len(declaredRates))], gap: uint32(1 + rng.IntN(400))}
		}
		srcs[0].key = 0 // the zero key, as an empty hot entry has
		// Calm seeds let windows fill; noisy ones disturb every few samples.
		scale := []int{1000, 200_000}[seed%2]
		ref := &refPools{pools: map[poolKey]*poolState{}}
		st := &exporterState{pools: map[poolKey]*poolState{}}
		fresh := poolKey(1 << 40)
		check := func(step int) {
			if len(ref.pools) != len(st.pools) || ref.poolSwept != st.poolSwept {
				t.Fatalf("seed %d step %d: %d sources, reference %d", seed, step, len(st.pools), len(ref.pools))
			}
			for k, r := range ref.pools {
				if s := st.pools[k]; s == nil || *s != *r {
					t.Fatalf("seed %d step %d: source %x state %+v, reference %+v", seed, step, k, s, r)
				}
			}
			for _, h := range st.poolHot {
				if h.s != nil && st.pools[h.key] != h.s {
					t.Fatalf("seed %d step %d: hot entry %x is not the map's", seed, step, h.key)
				}
			}
		}
		for step := range 200_000 {
			if nsrc > maxPoolSources && rng.IntN(50_000) == 0 {
				// A flood of new sources (the map full, so none is
				// stored and the hot cache is untouched) until a sweep
				// drops the sources it has not seen, hot ones included.
				for range poolIdleSweep + 1 {
					fresh++
					ref.sflowRate(fresh, 1, 1, 100)
					st.sflowRate(fresh, 1, 1, 100)
				}
				check(step)
			}
			i := rng.IntN(min(nsrc, 4)) // mostly a few busy sources
			if rng.IntN(8) == 0 {
				i = rng.IntN(nsrc)
			}
			s := &srcs[i]
			switch r := rng.IntN(scale); {
			case r < 930 || r >= 1000: // in order, some skipped
				s.seq += uint32(1 + rng.IntN(2))
				s.pool += s.gap*uint32(1+rng.IntN(3)) - uint32(rng.IntN(int(s.gap)))
			case r < 950: // late or repeated, or just too late
				s.seq -= uint32(rng.IntN(poolLate + 100))
			case r < 960: // the sequence leaps, or nearly
				s.seq += uint32(poolRestart - 2 + rng.IntN(4))
			case r < 970: // the pool leaps, or nearly
				s.pool += uint32(poolMaxDelta - 2 + rng.IntN(4))
			case r < 975: // the pool goes back
				s.pool -= uint32(rng.IntN(1000))
			case r < 985: // another declared rate
				s.declared = declaredRates[rng.IntN(len(declaredRates))]
				s.gap = uint32(1 + rng.IntN(400))
			case r < 990: // none
				s.declared = 0
			case r < 995: // a rate near 2^32
				s.seq++
				s.pool += uint32(poolMaxDelta - 1)
			default: // anywhere
				s.seq, s.pool = rng.Uint32(), rng.Uint32()
			}
			k := s.key
			if rng.IntN(500) == 0 {
				k = untracked
			}
			wr, wp := ref.sflowRate(k, s.seq, s.pool, s.declared)
			gr, gp := st.sflowRate(k, s.seq, s.pool, s.declared)
			if wr != gr || wp != gp {
				t.Fatalf("seed %d step %d: source %x seq %d pool %d declared %d: rate %d pooled %v, reference %d %v",
					seed, step, k, s.seq, s.pool, s.declared, gr, gp, wr, wp)
			}
			if wp {
				pooled++
			}
			if step%1000 == 0 {
				check(step)
			}
		}
		check(-1)
	}
	if pooled < 100_000 {
		t.Fatalf("only %d samples scaled by their pool's rate: the streams test too little", pooled)
	}
}
