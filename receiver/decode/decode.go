// Package decode turns one UDP datagram into flow records. It uses goflow2's
// wire decoders (netflowlegacy, netflow for v9/IPFIX, sflow) and its own
// producer: field values are read straight from goflow2's data sets into
// flow.Record values without goflow2's generic, allocating ProtoProducer.
//
// The per-exporter state (templates, sampler options, sequence numbers) is
// kept on the exporter's health.Exporter, so the health table's bound
// (max_exporters) and eviction govern it too; it is bounded in templates
// and samplers per exporter. A Decoder is used by one worker goroutine
// only. Exporter identity is the source address plus the
// observation domain (v9 source id, IPFIX observation domain, sFlow
// sub-agent): an exporter that restarts on a new source port keeps its state.
package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
)

// Limits bound a Decoder's per-exporter state. The number of exporters is
// bounded by the health.Table whose entries carry that state (see
// Decoder.Append).
type Limits struct {
	// MaxTemplates is the most templates (incl. options templates) per
	// exporter.
	MaxTemplates int
	// MaxSamplers is the most sampler/domain rate entries per exporter.
	MaxSamplers int
}

// DefaultLimits are used for zero fields.
var DefaultLimits = Limits{MaxTemplates: 256, MaxSamplers: 256}

// Result summarises one datagram for the caller's health accounting.
type Result struct {
	// Protocol is the datagram's wire protocol (ProtoUnknown if unknown).
	Protocol flow.Protocol
	// Records are the decoded records; the slice is reused by the next
	// Decode call.
	Records []flow.Record
}

// Decoder decodes datagrams. It is not safe for concurrent use.
type Decoder struct {
	limits Limits
	// retired marks a decoder whose socket a reload replaced (Retire).
	retired atomic.Bool
	recs    []flow.Record
	// noFastPath sends every datagram through goflow2 (the reference, for
	// the differential tests).
	noFastPath bool
	fastHits   int // datagrams the fast path decoded
	// gt is the template store goflow2 is given (varlen.go); setMisses
	// pairs goflow2's sets with the templates it did not get.
	gt        goflowTemplates
	setMisses []templateMiss
	// refVarSet, in tests, decodes the data sets kept from goflow2 in
	// place of varDataSet and varOptionsSet: it returns a
	// netflow.DataFlowSet or netflow.OptionsDataFlowSet, and whether a
	// record ran past the set's end.
	refVarSet func(version uint16, t any, data []byte) (set any, overrun bool)

	v5    netflowlegacy.PacketNetFlowV5
	v9    netflow.NFv9Packet
	ipfix netflow.IPFIXPacket
	sf    sflow.Packet
	buf   bytes.Buffer
	// samples are the pool readings of the current sFlow datagram's flow
	// samples, one per record appended, applied once the datagram is
	// decoded (see sflowRates).
	samples []poolSample
}

// New returns a Decoder with the given limits (zero fields take defaults).
// Decoders keep no exporter state of their own: it hangs off each
// exporter's health entry, so every decoder (one per socket) finds an
// exporter's templates, sampler rates and sequence numbers wherever its
// datagrams arrive, and they are forgotten with the entry.
func New(l Limits) *Decoder {
	if l.MaxTemplates <= 0 {
		l.MaxTemplates = DefaultLimits.MaxTemplates
	}
	if l.MaxSamplers <= 0 {
		l.MaxSamplers = DefaultLimits.MaxSamplers
	}
	return &Decoder{limits: l}
}

// stateOf returns the decoder state attached to ex, attaching a new one if
// it has none.
func (d *Decoder) stateOf(ex *health.Exporter) *exporterState {
	cur := ex.Attached()
	if st, ok := cur.(*exporterState); ok {
		return st
	}
	st := &exporterState{
		limits:    d.limits,
		templates: newTemplateStore(d.limits.MaxTemplates),
		samplers:  newUsedMap[samplerKey, uint32](),
		domains:   newUsedMap[uint32, uint32](),
		seq:       newUsedMap[seqKey, *seqState](),
		pools:     make(map[poolKey]*poolState),
	}
	if ex.Attach(cur, st) {
		return st
	}
	// Another socket's decoder attached one meanwhile: use it.
	if won, ok := ex.Attached().(*exporterState); ok {
		return won
	}
	return st
}

// Retire marks d as replaced: a reload has bound new sockets with new
// decoders, and d's socket is only drained until it closes. d then never
// sets its limits on an exporter (adopt), so the limits in force are those
// of the decoders not retired, whichever socket an exporter's next
// datagram reaches. Safe to call from any goroutine.
func (d *Decoder) Retire() { d.retired.Store(true) }

// Retired reports whether Retire was called.
func (d *Decoder) Retired() bool { return d.retired.Load() }

// adopt makes the limits of d, a decoder not retired, the state's: a reload
// changed max_templates_per_exporter. The exporter keeps its templates;
// past a lower limit, those no data set has used are forgotten first (see
// templateStore.setLimit). The intake retires the old sockets' decoders
// before the new ones read anything, so only one set of limits is ever
// adopted at a time.
func (st *exporterState) adopt(d *Decoder, ex *health.Exporter) {
	st.limits = d.limits
	st.templates.setLimit(d.limits.MaxTemplates)
	ex.Templates.Store(int64(st.templates.len()))
}

type samplerKey struct {
	domain  uint32
	sampler uint32
}

// seqKey names one sequence of an exporter: the protocol above the
// domain (v9 source id, IPFIX observation domain, v5 engine, sFlow
// sub-agent). A uint64 rather than a struct: a struct with padding is
// hashed field by field, a uint64 takes the map's fast path (this lookup is
// made once per datagram).
type seqKey uint64

func newSeqKey(proto flow.Protocol, domain uint32) seqKey {
	return seqKey(uint64(proto)<<32 | uint64(domain))
}

type exporterState struct {
	mu        sync.Mutex // held while one of the exporter's datagrams is decoded
	limits    Limits     // those of the last decoder not retired that used it (adopt)
	templates *templateStore
	samplers  usedMap[samplerKey, uint32] // sampler id -> rate
	domains   usedMap[uint32, uint32]     // observation domain -> rate
	seq       usedMap[seqKey, *seqState]  // at most maxSequenceSources
	// seqOnce are the sources whose datagram found seq full, a ring of at
	// most maxSequenceSources from seqOnceNext (see sequence).
	seqOnce     []seqKey
	seqOnceNext int
	pools       map[poolKey]*poolState // sFlow sources' sample pools
	poolTick    uint32                 // sFlow flow samples seen (the pools' clock)
	poolSwept   uint32                 // poolTick at the last sweep of pools
	poolHot     [poolHotSize]poolHotEntry
}

// Protocol sniffs a datagram's protocol from its first bytes.
func Protocol(b []byte) flow.Protocol {
	if len(b) >= 4 && binary.BigEndian.Uint32(b) == 5 {
		return flow.SFlowV5
	}
	if len(b) < 2 {
		return flow.ProtoUnknown
	}
	switch binary.BigEndian.Uint16(b) {
	case 5:
		return flow.NetFlowV5
	case 9:
		return flow.NetFlowV9
	case 10:
		return flow.IPFIX
	}
	return flow.ProtoUnknown
}

// Error is a decode failure with the reason it is counted under.
type Error struct {
	Reason health.Reason
	Err    error
}

func (e *Error) Error() string { return e.Reason.String() + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownVersion is wrapped by errors for datagrams of no known protocol.
var ErrUnknownVersion = errors.New("unknown protocol version")

// versionError is ErrUnknownVersion with what the datagram states: the
// version of a NetFlow/IPFIX header (16 bits), or of an sFlow one (32 bits,
// whose first 16 are 0), so a log line tells NetFlow v7 or v8, or an sFlow
// v4 agent, from noise; n is the datagram's length.
type versionError struct {
	version uint32
	n       int
}

// versionOf is the error for a datagram b of no known protocol.
func versionOf(b []byte) error {
	e := versionError{n: len(b)}
	switch {
	case len(b) >= 4 && binary.BigEndian.Uint16(b) == 0:
		e.version = binary.BigEndian.Uint32(b)
	case len(b) >= 2:
		e.version = uint32(binary.BigEndian.Uint16(b))
	}
	return e
}

func (e versionError) Error() string {
	if e.n < 2 {
		s := "s"
		if e.n == 1 {
			s = ""
		}
		return ErrUnknownVersion.Error() + ": a datagram of " + strconv.Itoa(e.n) + " byte" + s
	}
	return ErrUnknownVersion.Error() + " " + strconv.FormatUint(uint64(e.version), 10) + " (read: NetFlow 5 and 9, IPFIX 10, sFlow 5)"
}

// Is makes errors.Is(err, ErrUnknownVersion) hold.
func (e versionError) Is(target error) bool { return target == ErrUnknownVersion }

// Decode decodes one datagram from exporter addr. ex receives the health
// figures that only the decoder sees (templates, sequence loss, errors); the
// caller counts datagrams and records. Records decoded before an error are
// still returned; errs lists every problem found, each counted once in ex.
func (d *Decoder) Decode(payload []byte, addr netip.Addr, ex *health.Exporter) (Result, []error) {
	d.Reset()
	return d.Append(payload, addr, ex)
}

// Append is Decode without forgetting the records the calls since the last
// Reset (or Decode) decoded: Result.Records holds this datagram's records and
// Pending all of them, so a caller can fold several datagrams of one
// exporter into the core at once.
func (d *Decoder) Append(payload []byte, addr netip.Addr, ex *health.Exporter) (Result, []error) {
	start := len(d.recs)
	res := Result{Protocol: Protocol(payload)}
	var errs []error
	fail := func(r health.Reason, err error) {
		ex.CountError(r)
		errs = append(errs, &Error{Reason: r, Err: err})
	}
	if res.Protocol == flow.ProtoUnknown {
		fail(health.ReasonUnknownVersion, versionOf(payload))
		res.Records = d.recs[start:]
		return res, errs
	}
	st := d.stateOf(ex)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.limits != d.limits && !d.retired.Load() {
		st.adopt(d, ex)
	}
	switch res.Protocol {
	case flow.NetFlowV5:
		d.decodeV5(payload, addr, st, ex, fail)
	case flow.NetFlowV9, flow.IPFIX:
		d.decodeNetFlow(payload, addr, st, res.Protocol, ex, fail)
	case flow.SFlowV5:
		d.decodeSFlow(payload, addr, st, ex, fail)
	}
	res.Records = d.recs[start:]
	return res, errs
}

// Pending returns the records of every Append since the last Reset; the
// slice is reused after Reset.
func (d *Decoder) Pending() []flow.Record { return d.recs }

// maxRetainedRecords is the most records' room (192 bytes each) a Decoder
// keeps between batches. The intake folds a socket's records into the core
// every 1024 or so, but one datagram of one-byte records holds 65,515:
// room for those (12 MB) is let go after their batch instead of staying
// pinned in every socket's decoder.
const maxRetainedRecords = 8192

// Reset forgets the pending records.
func (d *Decoder) Reset() {
	if cap(d.recs) > maxRetainedRecords {
		d.recs = nil
		return
	}
	d.recs = d.recs[:0]
}

// reasonOf classifies a goflow2 error.
func reasonOf(err error) health.Reason {
	switch {
	case errors.Is(err, ErrTemplateInvalid):
		return health.ReasonTemplateInvalid
	case errors.Is(err, ErrTemplateLimit):
		return health.ReasonTemplateLimit
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return health.ReasonTruncated
	}
	return health.ReasonMalformed
}

func (d *Decoder) reader(b []byte) *bytes.Buffer {
	d.buf = *bytes.NewBuffer(b)
	return &d.buf
}

// newRecord appends a record of the exporter addr's domain and protocol to
// the batch and returns it for the decoder to fill in place. Building a
// record as a composite literal instead costs a zeroed 192-byte copy on the
// stack, its copy into the batch and a store-forwarding stall per record.
func (d *Decoder) newRecord(addr netip.Addr, domain uint32, proto flow.Protocol) *flow.Record {
	d.recs = append(d.recs, flow.Record{})
	r := &d.recs[len(d.recs)-1]
	r.Exporter, r.Domain, r.Protocol = addr, domain, proto
	return r
}
