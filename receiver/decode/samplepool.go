package decode

import "github.com/netsampler/goflow2/v2/decoders/sflow"

// The effective sampling rate of an sFlow source, from its sample pool.
//
// Every flow sample carries its source's sample pool (a running 32-bit
// count of the packets that could have been sampled: those skipped plus
// those sampled) and sequence number (incremented with each sample the
// source sends). An agent short of resources skips samples: the pool still
// counts their packets but no sample carries them, so scaling by the
// configured rate undercounts. Δpool / Δsequence is the rate the agent
// actually achieved.
//
// The effective rate replaces the declared one only when it is higher by
// more than 1/poolTolerance. With random sampling Δpool / Δsequence
// wanders around the declared rate by about 1/√n over n samples even when
// nothing is dropped; scaling by that noise would make every total jitter
// for no gain, so the rate is measured over at least poolMinSamples
// samples (±3 %) and must be 10 % above the declared rate. A lower
// effective rate is not believed: an agent cannot sample more often than
// it is configured to, so a pool that grows too slowly (some agents send 0,
// or count only the samples) is broken, and the declared rate is kept. A
// sample that declares no rate is left to the default rate and the
// unresolved count, as without a pool.
//
// A measurement starts again (declared rate until poolMinSamples more) when
// the source restarts (its sequence number goes back by more than
// poolLate, or jumps ahead by poolRestart or more, or its pool goes back
// or leaps by poolMaxDelta or more)
// or its declared rate changes, so a window never spans two regimes.

// poolKey names one sampling source of an exporter: the datagram's
// sub-agent in the high half, the sample's source id (type in the top
// byte, index below, as the compact flow sample carries it) in the low
// half. A uint64 rather than a struct: the map lookup per sample is the
// cost of this feature, and 64-bit keys take the map's fast path.
type poolKey uint64

// untracked is the key of a source whose id does not fit the compact form
// (an expanded sample's type above 255 or index above 2^24-1, not seen in
// practice): it keeps its declared rate.
const untracked = ^poolKey(0)

// newPoolKey returns the key of source (srcType, srcIndex) of sub-agent.
func newPoolKey(subAgent, srcType, srcIndex uint32) poolKey {
	if srcType > 0xff || srcIndex > 0xffffff {
		return untracked
	}
	return poolKey(uint64(subAgent)<<32 | uint64(srcType<<24|srcIndex))
}

// poolState is one source's measurement: the reference sample's sequence
// number and the pool counted since it (span: the sum of the in-order
// steps, each below poolMaxDelta, so it cannot wrap the way the 32-bit
// pool does: a source above 2^22 packets a sample passes 2^32 before
// poolMinSamples samples), the newest in-order sample, the declared rate
// the window belongs to, the rate of the last full window, and when the
// source was last seen (exporterState.poolTick), for eviction.
type poolState struct {
	span           uint64
	seq0           uint32
	last, lastPool uint32
	declared       uint32
	rate           uint32
	seen           uint32
}

const (
	// poolMinSamples is how many samples past the reference the rate
	// needs before it is trusted.
	poolMinSamples = 1024
	// poolWindow is how many samples a window lasts before the reference
	// moves to the newest sample (so the rate follows changes).
	poolWindow = 4096
	// poolMaxDelta moves the reference early, so a window follows a
	// high-rate source's changes as soon as a slow one's; no step of the
	// pool may be this large (a leap: the source restarted).
	poolMaxDelta = 1 << 30
	// poolRestart is a forward sequence jump taken as a restarted agent
	// or source rather than lost samples.
	poolRestart = 1 << 20
	// poolLate is how far back a sample may be and still count as late
	// (reordered or repeated) rather than as a restarted source.
	poolLate = 1024
	// poolTolerance: the effective rate is used when it exceeds the
	// declared one by more than 1/poolTolerance (10 %).
	poolTolerance = 10
	// maxPoolSources bounds the sources tracked per exporter (an entry is
	// about 60 bytes: 30 KiB per exporter, 30 MiB with max_exporters at
	// its default of 1024). When it is full, sources not seen for
	// poolIdleSweep samples of the exporter are dropped, at most once per
	// poolIdleSweep samples; until then samples of further sources keep
	// their declared rate.
	maxPoolSources = 512
	poolIdleSweep  = 1 << 16
)

// poolSample is what a flow sample says of its source's pool.
type poolSample struct {
	key                 poolKey
	seq, pool, declared uint32
}

// sflowRates sets the sampling rate of the records appended since start,
// one per flow sample of d.samples, in order. It runs once a datagram is
// decoded, by whichever path, so a datagram the fast path hands on to
// goflow2 updates the sources' measurements only once.
func (d *Decoder) sflowRates(st *exporterState, start int) {
	for i, ps := range d.samples {
		if start+i >= len(d.recs) {
			break
		}
		rate, pooled := st.sflowRate(ps.key, ps.seq, ps.pool, ps.declared)
		setSampleRate(&d.recs[start+i], rate, ps.declared, pooled)
	}
	d.samples = d.samples[:0]
}

// sflowRate returns the rate a flow sample is to be scaled by and whether it
// is the pool's effective rate (true) or the declared one (false). It
// updates the source's measurement.
func (st *exporterState) sflowRate(k poolKey, seq, pool, declared uint32) (uint32, bool) {
	st.poolTick++
	if declared == 0 || k == untracked {
		return declared, false
	}
	hot := &st.poolHot[uint64(k)*hotMul>>(64-poolHotBits)]
	s := hot.s
	if hot.key != k || s == nil {
		if s = st.pools[k]; s == nil {
			if len(st.pools) >= maxPoolSources {
				st.sweepPools()
			}
			if len(st.pools) < maxPoolSources {
				st.pools[k] = &poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
			}
			return declared, false
		}
		*hot = poolHotEntry{key: k, s: s}
	}
	s.seen = st.poolTick
	rate := s.rate
	d := int32(seq - s.last)
	switch {
	case declared != s.declared:
		*s = poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
		return declared, false
	case d > 0 && d < poolRestart && pool-s.lastPool < poolMaxDelta:
		// In order (the pool may not go back nor leap either).
		s.span += uint64(pool - s.lastPool)
		s.last, s.lastPool = seq, pool
		if n, dp := seq-s.seq0, s.span; n >= poolMinSamples {
			x := dp + uint64(n)/2 // rate is x/n, rounded
			switch {
			case n >= poolWindow || dp >= poolMaxDelta:
				rate = uint32(x / uint64(n))
				s.seq0, s.span, s.rate = seq, 0, rate
			case !aboveTolerance(x, uint64(n), declared):
				// Mostly so: the division is left to the samples
				// whose rate is used.
				return declared, false
			default:
				rate = uint32(x / uint64(n))
			}
		}
	case d <= 0 && d > -poolLate:
		// Late or repeated: the rate of the last full window, if any.
	default:
		// Restarted (or a sequence or pool that leapt): measure afresh.
		*s = poolState{seq0: seq, last: seq, lastPool: pool, declared: declared, seen: st.poolTick}
		return declared, false
	}
	if !aboveTolerance(uint64(rate), 1, declared) {
		return declared, false
	}
	return rate, true
}

// aboveTolerance reports whether the rate x/n, rounded down, exceeds
// declared by more than 1/poolTolerance, without dividing: n is below
// 2^21 (a window ends by poolWindow samples, each sample advances the
// sequence by less than poolRestart), so the product cannot overflow
// (nor can x, below 2^41: at most poolMinSamples steps of less than
// poolMaxDelta each before the window is first judged, which ends it
// from poolMaxDelta on).
func aboveTolerance(x, n uint64, declared uint32) bool {
	limit := uint64(declared) + uint64(declared)/poolTolerance // the highest rate within tolerance
	return x >= (limit+1)*n
}

// The hot sources: a direct-mapped cache of the pools map (a source's
// entry is at the top poolHotBits of its key times hotMul). An exporter
// sends samples of a few sources over and over, and a hit costs a
// multiply and a compare where the map lookup cost about 10 ns per
// sample. Keys that collide only fall back to the map. The pointers stay
// valid while their source is in the map: sweepPools, the only place
// that deletes, empties the cache.
const (
	poolHotBits = 4
	poolHotSize = 1 << poolHotBits
	hotMul      = 0x9e3779b97f4a7c15 // 2^64 / golden ratio
)

type poolHotEntry struct {
	key poolKey
	s   *poolState
}

// sweepPools drops the sources not seen for poolIdleSweep samples, at most
// once per poolIdleSweep samples (a flood of new sources costs one sweep,
// not one per sample).
func (st *exporterState) sweepPools() {
	if st.poolTick-st.poolSwept < poolIdleSweep && st.poolSwept != 0 {
		return
	}
	st.poolSwept = st.poolTick
	clear(st.poolHot[:])
	for k, s := range st.pools {
		if st.poolTick-s.seen >= poolIdleSweep {
			delete(st.pools, k)
		}
	}
}

// flowSampleKey returns the pool key of a compact flow sample's source id.
func flowSampleKey(subAgent, sourceID uint32) poolKey {
	return poolKey(uint64(subAgent)<<32 | uint64(sourceID))
}

// headerKey returns the pool key of a sample goflow2 decoded.
func headerKey(subAgent uint32, h *sflow.SampleHeader) poolKey {
	return newPoolKey(subAgent, h.SourceIdType, h.SourceIdValue)
}
