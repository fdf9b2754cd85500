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

// maxSequenceSources bounds an exporter's sequence trackers (observation
// domains, sFlow sub-agents).
const maxSequenceSources = 64

// lateWindow is how many datagrams back a sequence number may step and still
// be read as a late (reordered) datagram; further back is a restart.
const lateWindow = 4

type seqState struct {
	next  uint32 // expected next sequence number (RFC convention)
	raw   uint32 // last sequence number as received
	lastN uint32 // records in the last message
	// inclusive marks an exporter whose record-counting sequence numbers
	// include the current message's records (softflowd's IPFIX) instead of
	// counting those sent before it (RFC 7011).
	inclusive bool
}

// sequence checks a datagram's sequence number against the expected one and
// counts gaps and the records they lost. n is the number of records (or
// samples) in this datagram. Wrapping at 2^32 is handled by unsigned
// arithmetic; a backwards or huge jump is a restart, not loss; a small
// backwards step (a late datagram) is ignored.
//
// For record-counting sequences it also recognises exporters that count the
// current message's records in its sequence number (softflowd's IPFIX does):
// when a number fits that convention and not RFC 7011's, it adopts it (and
// goes back if the RFC convention fits again), so such an exporter shows no
// false loss.
func (st *exporterState) sequence(ex *health.Exporter, k seqKey, seq, n uint32, unit seqUnit) {
	s, ok := st.seq.get(k)
	advance := n
	if unit == seqDatagrams {
		advance = 1
	}
	if !ok {
		s := &seqState{next: seq + advance, raw: seq, lastN: n}
		if st.seq.len() < maxSequenceSources {
			// A source's second datagram marks its tracker used: one-off
			// sources (forged domains) give way to new ones.
			st.seq.put(k, s, maxSequenceSources)
			return
		}
		// Full: only a source's second datagram takes the place of a
		// tracker no second datagram has used (st.seqOnce), so that more
		// sources than trackers, sending in turn, do not each push out
		// the tracker of the next before its second datagram (tracking
		// none), and one-off sources push out none.
		if st.seenOnce(k) && st.seq.put(k, s, maxSequenceSources) {
			st.seq.get(k)
		}
		return
	}
	raw := seq
	if unit == seqRecords && n > 0 {
		rfc, incl := raw == s.raw+s.lastN, raw == s.raw+n
		switch {
		case !s.inclusive && incl && !rfc:
			s.inclusive = true
			s.next = s.raw // in the inclusive convention, this message starts where the last one ended
		case s.inclusive && rfc && !incl:
			s.inclusive = false
			s.next = raw
		}
		if s.inclusive {
			seq = raw - n
		}
	}
	s.raw, s.lastN = raw, n
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
	case gap < 0 && -gap <= lateWindow*int64(max(advance, s.lastN, 1)):
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

// seenOnce reports whether k is among the last maxSequenceSources sources
// whose datagram found the sequence trackers full, and adds it if not.
func (st *exporterState) seenOnce(k seqKey) bool {
	for _, o := range st.seqOnce {
		if o == k {
			return true
		}
	}
	if len(st.seqOnce) < maxSequenceSources {
		st.seqOnce = append(st.seqOnce, k)
	} else {
		st.seqOnce[st.seqOnceNext] = k
		st.seqOnceNext = (st.seqOnceNext + 1) % maxSequenceSources
	}
	return false
}
