package flow

import "math/bits"

// SatAdd returns a+b, or the largest uint64 if that overflows: counts that
// wrapped would go down (a counter reset to Prometheus) or look small and
// real. Branch-free (the carry, negated, is all ones exactly when the sum
// wrapped): the core runs it three times per record and family.
func SatAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	return s | -carry
}
