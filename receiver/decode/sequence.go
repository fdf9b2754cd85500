package decode

import (
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// seqUnit says what a protocol's sequence number counts.
type seqUnit uint8

const (
	// seqRecords: the number is the count of records sent before this
	// datagram (NetFlow v5, IPFIX).
	seqRecords seqUnit = iota
	// seqDatagrams: the number counts datagrams (NetFlow v9, sFlow).
	seqDatagrams
)

// seqResetGap is the jump beyond which a sequence discontinuity is read as an
// exporter restart (or a counter reset), not as loss.
const seqResetGap = 1 << 20

type seqState struct {
	next uint32 // expected next sequence number
}

// sequence checks a datagram's sequence number against the expected one and
// counts gaps and the records they lost. n is the number of records (or
// samples) in this datagram. Wrapping at 2^32 is handled by unsigned
// arithmetic; a backwards or huge jump is a restart, not loss; a small
// backwards step (reordering, or an exporter such as softflowd whose IPFIX
// numbers count flows, not records) is ignored.
func (st *exporterState) sequence(ex *health.Exporter, k seqKey, seq, n uint32, unit seqUnit) {
	s := st.seq[k]
	advance := n
	if unit == seqDatagrams {
		advance = 1
	}
	if s == nil {
		if len(st.seq) >= 64 { // bounded: domains per exporter
			return
		}
		st.seq[k] = &seqState{next: seq + advance}
		return
	}
	gap := int64(int32(seq - s.next))
	switch {
	case gap == 0:
	case gap > 0 && gap < seqResetGap:
		ex.SequenceGaps.Add(1)
		lost := uint64(gap)
		if unit == seqDatagrams {
			lost *= uint64(n) // estimate: lost datagrams carried as many as this one
		}
		ex.LostRecords.Add(lost)
	case gap < 0 && gap > -seqResetGap/16:
		// Late or duplicate datagram: keep the higher expectation.
		if next := seq + advance; int32(next-s.next) > 0 {
			s.next = next
		}
		return
	default:
		ex.SequenceResets.Add(1)
	}
	s.next = seq + advance
}
