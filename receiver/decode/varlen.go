package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Data sets whose templates have variable-length fields (length 0xffff,
// RFC 7011 7) are decoded here, by both decode paths, not by goflow2.
// goflow2 reads records while the bytes left are at least the template's
// fixed size: for a template of only variable-length fields that is 0, so
// it reads past the set's end and fails the whole set, losing every record
// (and, the error being fatal, every later set of the datagram); and
// trailing padding at least that long is read as a record, which fails the
// set the same way or yields a record of cut-short values.
//
// Here a record is read only when at least the template's shortest record
// is left (its fixed-length fields plus one length octet per
// variable-length field): anything shorter after the last record is padding
// and ignored, as RFC 7011 3.3.1 says padding is shorter than any record. A
// record that is at least that long but whose lengths run past the set's
// end is malformed: it and the rest of the set are dropped, the records
// before it stand, and the set counts one `truncated` decode error.
// Everywhere goflow2 reads a set right, the records are the same
// (TestVariableLengthSets, and the differential tests and fuzz targets of
// fastpath_test.go, which check against goflow2's own record decoder and,
// where it is right, its set decoder).

// errRecordOverrun marks a data set whose last record runs past its end.
var errRecordOverrun = errors.New("a record runs past the end of the set")

// varOp is one field of a template with variable-length fields: n bytes,
// or a variable length when n < 0. Runs of fixed-length fields nobody reads
// are one op.
type varOp struct {
	n   int32
	typ uint16
	use bool // recordBuilder.field (or samplingFields.setValue) reads it
}

// compileVariable returns the compiled form of a template with
// variable-length fields (scope fields first for an options template), or
// nil when it has none.
func compileVariable(options bool, fields ...[]netflow.Field) *compiledTemplate {
	c := &compiledTemplate{options: options}
	variable := false
	for _, fs := range fields {
		for _, f := range fs {
			op := varOp{n: int32(f.Length), typ: f.Type, use: !f.PenProvided && usedIE[f.Type]}
			if f.Length == 0xffff {
				op.n, variable = -1, true
				c.size++ // the length octet
			} else {
				c.size += int(f.Length)
			}
			if last := len(c.vars) - 1; op.n >= 0 && !op.use && last >= 0 && c.vars[last].n >= 0 && !c.vars[last].use {
				c.vars[last].n += op.n // at most 1024 fields of 65534 bytes
				continue
			}
			c.vars = append(c.vars, op)
		}
	}
	if !variable {
		return nil
	}
	c.vars = slices.Clone(c.vars) // kept with the template: no room to spare
	return c
}

// read returns the value of the field at data[o:] and the offset past it;
// ok is false when the field runs past data's end.
func (op varOp) read(data []byte, o int) (v []byte, next int, ok bool) {
	n := int(op.n)
	if n < 0 {
		if o >= len(data) {
			return nil, 0, false
		}
		n = int(data[o])
		o++
		if n == 255 {
			if len(data)-o < 2 {
				return nil, 0, false
			}
			n = int(binary.BigEndian.Uint16(data[o:]))
			o += 2
		}
	}
	if len(data)-o < n {
		return nil, 0, false
	}
	return data[o : o+n], o + n, true
}

// varDataSet decodes the records of a data set (without its header) whose
// template c has variable-length fields. It reports whether a record ran
// past the set's end.
func (d *Decoder) varDataSet(st *exporterState, addr netip.Addr, domain uint32, proto flow.Protocol, c *compiledTemplate, data []byte, dr *domainRate) (overrun bool) {
	for len(data) >= c.size {
		rb := recordBuilder{r: d.newRecord(addr, domain, proto)}
		o := 0
		for _, op := range c.vars {
			v, next, ok := op.read(data, o)
			if !ok {
				d.recs = d.recs[:len(d.recs)-1]
				return true
			}
			if op.use {
				rb.field(op.typ, v)
			}
			o = next
		}
		rb.finish(st, domain, dr)
		data = data[o:]
	}
	return false
}

// varOptionsSet reads the sampling rates of an options data set whose
// template c has variable-length fields, as options does for goflow2's
// records. It returns the records read, how many rates were refused, and
// whether a record ran past the set's end.
func (d *Decoder) varOptionsSet(st *exporterState, domain uint32, c *compiledTemplate, data []byte) (records, refused uint32, overrun bool) {
	for len(data) >= c.size {
		var sf samplingFields
		o := 0
		for _, op := range c.vars {
			v, next, ok := op.read(data, o)
			if !ok {
				return records, refused, true
			}
			if op.use {
				sf.setValue(op.typ, v)
			}
			o = next
		}
		if !d.setRate(st, domain, &sf) {
			refused++
		}
		records++
		data = data[o:]
	}
	return records, refused, false
}

// overrunError is the error of a data set whose last record runs past its
// end; both decode paths count it as ReasonTruncated.
func overrunError(proto flow.Protocol, id uint16) error {
	return fmt.Errorf("%s: data set %d: %w", netflowName(proto), id, errRecordOverrun)
}

// templateMiss is a data set goflow2 found no template for: missing, or
// kept from it (c is then the compiled template, t the stored one).
type templateMiss struct {
	id uint16
	c  *compiledTemplate
	t  any
}

// goflowTemplates is an exporter's template store as goflow2 sees it while
// it decodes one datagram: a template with variable-length fields is
// reported missing, so goflow2 returns the data set's bytes as a
// netflow.RawFlowSet (a missing template is no error that stops it) and
// the set is decoded by varDataSet or varOptionsSet. misses records every
// template goflow2 did not get, in the order it asked for them, which is
// the order of the RawFlowSets it returns.
type goflowTemplates struct {
	*templateStore
	misses []templateMiss
	// refused are the errors of the templates the store refused, in
	// order; goflow2 is told nothing of them (see AddTemplate).
	refused []error
	// all gives goflow2 every template: goflow2 as it is, for the tests.
	all bool
}

// AddTemplate stores a template; one the store refuses (invalid, or past
// the exporter's limits) is kept in refused for the decoder to count, and
// goflow2 is told it was stored: goflow2 stops decoding a datagram at the
// first error AddTemplate returns, so one bad template would lose the
// templates and data sets after it, unseen, every time the exporter sent
// them in that order. Its data sets are then counted as template_missing.
func (g *goflowTemplates) AddTemplate(version uint16, domain uint32, id uint16, t any) error {
	if err := g.templateStore.AddTemplate(version, domain, id, t); err != nil {
		g.refused = append(g.refused, err)
	}
	return nil
}

// GetTemplate returns a stored template goflow2 may decode the data of.
// goflow2 asks once per data set, so a stored template is marked used
// (as templateStore.use does), as the fast path marks the templates of the
// sets it decodes.
func (g *goflowTemplates) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	st, ok := g.entries.get(templateKey(version, domain, id))
	if ok && (g.all || st.c == nil || st.c.vars == nil) {
		return st.t, nil
	}
	// Not stored (st is zero), or with variable-length fields: the set
	// is left to varDataSet or varOptionsSet.
	g.misses = append(g.misses, templateMiss{id, st.c, st.t})
	return nil, netflow.ErrorTemplateNotFound
}

// pairMisses returns, for each of goflow2's sets, the template it did not
// get when the set is a RawFlowSet of a data set, else a zero templateMiss.
func (d *Decoder) pairMisses(sets []any) []templateMiss {
	out := d.setMisses[:0]
	k := 0
	for _, s := range sets {
		var m templateMiss
		if raw, ok := s.(netflow.RawFlowSet); ok && raw.Id >= 256 && k < len(d.gt.misses) {
			if m = d.gt.misses[k]; m.id != raw.Id {
				m = templateMiss{} // cannot happen: goflow2 asks once per data set, in order
			}
			k++
		}
		out = append(out, m)
	}
	d.setMisses = out
	return out
}
