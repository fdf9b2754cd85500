// Package sampling corrects flow records for packet sampling.
//
// The rate in force for a record is chosen in this order, highest first:
// an operator override for the exporter (by address or CIDR); the rate the
// decoder found on the wire (record field, sampler-id options, observation
// domain options, v5 header or sFlow sample, in that order, see
// flow.RateSource); the configured default. A record for which none is known
// is counted at 1:1 and reported as unresolved, never silently.
package sampling

import (
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Override pins the sampling rate of every exporter inside Prefix.
type Override struct {
	// Prefix matches exporter addresses; a single address is a /32 or /128.
	Prefix netip.Prefix
	// Rate is N for 1:N sampling; at least 1.
	Rate uint32
}

// Config holds the operator's sampling settings.
type Config struct {
	// DefaultRate applies when neither an override nor the wire states a
	// rate; 0 leaves such records unresolved.
	DefaultRate uint32
	// Overrides win over anything the exporter states. The longest
	// matching prefix wins.
	Overrides []Override
}

// Validate reports the first problem in c.
func (c Config) Validate() error {
	for i, o := range c.Overrides {
		if !o.Prefix.IsValid() {
			return fmt.Errorf("overrides[%d].exporter: not an address or CIDR", i)
		}
		if o.Rate == 0 {
			return fmt.Errorf("overrides[%d].rate: must be at least 1", i)
		}
	}
	return nil
}

// Corrector applies a Config to records. It is safe for concurrent use: it
// is immutable after New.
type Corrector struct {
	defaultRate uint32
	overrides   []Override // longest prefix first
}

// New returns a Corrector for c; c must be valid.
func New(c Config) *Corrector {
	ov := append([]Override(nil), c.Overrides...)
	// Longest prefix first so the first match is the best one.
	for i := 1; i < len(ov); i++ {
		for j := i; j > 0 && ov[j].Prefix.Bits() > ov[j-1].Prefix.Bits(); j-- {
			ov[j], ov[j-1] = ov[j-1], ov[j]
		}
	}
	return &Corrector{defaultRate: c.DefaultRate, overrides: ov}
}

// Override returns the operator's rate for an exporter, or 0; the
// exporter is matched as flow.PrefixAddr says (a link-local exporter's
// zone is not part of the match).
func (c *Corrector) Override(exporter netip.Addr) uint32 {
	exporter = flow.PrefixAddr(exporter)
	for _, o := range c.overrides {
		if o.Prefix.Contains(exporter) {
			return o.Rate
		}
	}
	return 0
}

// Apply sets r.SamplingRate, r.RateSource, r.ScaledBytes and r.ScaledPackets.
// override is the result of Override for r.Exporter (callers cache it per
// exporter). It reports false when no rate could be resolved; the record is
// then scaled 1:1 and the caller counts it as unresolved.
func (c *Corrector) Apply(r *flow.Record, override uint32) bool {
	switch {
	case override != 0:
		r.SamplingRate, r.RateSource = override, flow.RateOverride
	case r.SamplingRate != 0 && r.RateSource != flow.RateUnknown:
		// The wire stated it.
	case c.defaultRate != 0:
		r.SamplingRate, r.RateSource = c.defaultRate, flow.RateDefault
	default:
		r.SamplingRate, r.RateSource = 1, flow.RateUnknown
		r.ScaledBytes, r.ScaledPackets = r.Bytes, r.Packets
		return false
	}
	n := uint64(r.SamplingRate)
	r.ScaledBytes = saturatingMul(r.Bytes, n)
	r.ScaledPackets = saturatingMul(r.Packets, n)
	return true
}

// saturatingMul multiplies without wrapping: a hostile exporter stating a
// huge count and rate must not wrap a counter back to a small value.
// It runs twice per record: the high half of the full product says whether
// it overflowed, where the test a > max/b cost a division.
func saturatingMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}
