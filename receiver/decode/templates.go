package decode

import (
	"errors"
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Errors returned by the template store; the decoder counts them by reason.
var (
	// ErrTemplateInvalid marks a template that would make goflow2's data
	// set loop never advance (no fields, or only zero-length fields).
	ErrTemplateInvalid = errors.New("invalid template")
	// ErrTemplateLimit marks a template refused because the exporter's
	// templates in use (by a data set) leave no room for it, in number or
	// in fields: templates no data set has used are forgotten to make it.
	ErrTemplateLimit = errors.New("template limit reached")
)

// templateStore is one exporter's templates, bounded. It implements goflow2's
// netflow.NetFlowTemplateSystem. The exporter's decoders (one per socket)
// use it under exporterState.mu, so it has no lock of its own.
type templateStore struct {
	max int
	// fieldBudget bounds the number of fields of the stored templates
	// (entries.weight): the templates' memory is in proportion to it, at
	// most about 20 bytes a field (TestTemplateMemoryPerField), 330 KB
	// per exporter at the default limits. Without it max templates of
	// 16,000 fields each (a 64 KB template set) took 250 MB per exporter.
	fieldBudget int
	// entries are the templates by templateKey, each weighing its fields.
	// A template is used once a data set has been decoded with it (see
	// use); only templates not used since stored are forgotten to make
	// room for a new one. Source addresses are easy to spoof: a flood of
	// made-up templates in a real exporter's name then forgets only
	// made-up ones (and templates no data set has used yet), never the
	// templates the exporter's data sets use.
	entries usedMap[uint64, storedTemplate]
}

// storedTemplate is a template as goflow2 decodes it and, for data
// templates (see fastpath.go) and options templates with variable-length
// fields (varlen.go), its compiled form.
type storedTemplate struct {
	t any
	c *compiledTemplate
}

// maxTemplateFields is the most fields (scope fields included) one template
// may have; real templates have tens, and the IANA registry a few hundred
// information elements.
const maxTemplateFields = 1024

// avgTemplateFields is the mean number of fields per template that an
// exporter's field budget allows for: max templates of avgTemplateFields,
// and at least one of maxTemplateFields.
const avgTemplateFields = 64

func newTemplateStore(limit int) *templateStore {
	return &templateStore{max: limit, fieldBudget: fieldBudgetFor(limit), entries: newUsedMap[uint64, storedTemplate]()}
}

// fieldBudgetFor returns the field budget of a store of limit templates.
func fieldBudgetFor(limit int) int { return max(limit*avgTemplateFields, maxTemplateFields) }

// setLimit makes limit the most templates kept (and, with it, the field
// budget). Past a lower bound, templates no data set has used are
// forgotten, oldest first; if those in use alone exceed it, every template
// is, and the exporter's next templates are stored (or refused) as if the
// limit had been this one from the start.
func (s *templateStore) setLimit(limit int) {
	s.max, s.fieldBudget = limit, fieldBudgetFor(limit)
	if !s.entries.shrink(s.max, s.fieldBudget) {
		s.entries = newUsedMap[uint64, storedTemplate]()
	}
}

// use records that a data set is decoded with the stored template k and
// returns its compiled form.
func (s *templateStore) use(k uint64) *compiledTemplate {
	t, _ := s.entries.get(k)
	return t.c
}

// compiled returns the compiled form of the stored template k, if any.
func (s *templateStore) compiled(k uint64) *compiledTemplate {
	t, _ := s.entries.peek(k)
	return t.c
}

// len returns how many templates are stored.
func (s *templateStore) len() int { return s.entries.len() }

// fieldCount returns the number of fields of a stored template.
func fieldCount(t any) int {
	switch t := t.(type) {
	case netflow.TemplateRecord:
		return len(t.Fields)
	case netflow.NFv9OptionsTemplateRecord:
		return len(t.Scopes) + len(t.Options)
	case netflow.IPFIXOptionsTemplateRecord:
		return len(t.Scopes) + len(t.Options)
	}
	return 0
}

func templateKey(version uint16, domain uint32, id uint16) uint64 {
	return uint64(version)<<48 | uint64(domain)<<16 | uint64(id)
}

// fieldsSize returns the fixed size of fields and whether any is variable.
func fieldsSize(fields []netflow.Field) (size int, variable bool) {
	for _, f := range fields {
		if f.Length == 0xffff {
			variable = true
			continue
		}
		size += int(f.Length)
	}
	return size, variable
}

func validFields(fields ...[]netflow.Field) bool {
	total, anyVar := 0, false
	for _, fs := range fields {
		s, v := fieldsSize(fs)
		total += s
		anyVar = anyVar || v
	}
	return total > 0 || anyVar
}

// withoutEmpty returns fields without its zero-length fixed fields, which
// take no bytes of a record and carry no value. goflow2 makes a DataField
// for every field of every record it decodes, so a template of thousands
// of them over a one-byte record (a variable-length field, or a one-byte
// one) would turn one 64 KB data set into tens of gigabytes: with every
// field taking at least one byte, a record has at most as many fields as
// bytes. fields is not modified.
func withoutEmpty(fields []netflow.Field) []netflow.Field {
	n := 0
	for _, f := range fields {
		if f.Length != 0 {
			n++
		}
	}
	if n == len(fields) {
		return fields
	}
	out := make([]netflow.Field, 0, n)
	for _, f := range fields {
		if f.Length != 0 {
			out = append(out, f)
		}
	}
	return out
}

// AddTemplate stores a template, replacing one with the same id.
func (s *templateStore) AddTemplate(version uint16, domain uint32, id uint16, t any) error {
	switch tt := t.(type) {
	case netflow.TemplateRecord:
		tt.Fields = withoutEmpty(tt.Fields)
		if !validFields(tt.Fields) {
			return fmt.Errorf("template %d: %w", id, ErrTemplateInvalid)
		}
		t = tt
	case netflow.NFv9OptionsTemplateRecord:
		tt.Scopes, tt.Options = withoutEmpty(tt.Scopes), withoutEmpty(tt.Options)
		if !validFields(tt.Scopes, tt.Options) {
			return fmt.Errorf("options template %d: %w", id, ErrTemplateInvalid)
		}
		t = tt
	case netflow.IPFIXOptionsTemplateRecord:
		tt.Scopes, tt.Options = withoutEmpty(tt.Scopes), withoutEmpty(tt.Options)
		if !validFields(tt.Scopes, tt.Options) {
			return fmt.Errorf("options template %d: %w", id, ErrTemplateInvalid)
		}
		t = tt
	default:
		return fmt.Errorf("template %d: %w", id, ErrTemplateInvalid)
	}
	n := fieldCount(t)
	if n > maxTemplateFields {
		return fmt.Errorf("template %d has %d fields, more than %d: %w", id, n, maxTemplateFields, ErrTemplateLimit)
	}
	// Room is made by forgetting templates no data set has used, oldest
	// first, and only if that makes enough: templates in use are kept,
	// and a template that cannot be stored makes nothing be forgotten.
	k := templateKey(version, domain, id)
	switch s.entries.room(k, n, s.max, s.fieldBudget) {
	case roomLimit:
		return fmt.Errorf("template %d: %w", id, ErrTemplateLimit)
	case roomBudget:
		return fmt.Errorf("template %d: the exporter's templates already have %d fields, at most %d: %w", id, s.entries.weight, s.fieldBudget, ErrTemplateLimit)
	}
	st := storedTemplate{t: t}
	switch tt := t.(type) {
	case netflow.TemplateRecord:
		st.c = compile(tt)
	case netflow.NFv9OptionsTemplateRecord:
		st.c = compileVariable(true, tt.Scopes, tt.Options)
	case netflow.IPFIXOptionsTemplateRecord:
		st.c = compileVariable(true, tt.Scopes, tt.Options)
	}
	s.entries.store(k, st, n, s.max, s.fieldBudget)
	return nil
}

// GetTemplate returns a stored template or netflow.ErrorTemplateNotFound.
func (s *templateStore) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	if t, ok := s.entries.peek(templateKey(version, domain, id)); ok {
		return t.t, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

// RemoveTemplate deletes a template (IPFIX template withdrawal).
func (s *templateStore) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	if t, ok := s.entries.remove(templateKey(version, domain, id)); ok {
		return t.t, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

// GetTemplates returns a copy of every template.
func (s *templateStore) GetTemplates() netflow.FlowBaseTemplateSet {
	out := make(netflow.FlowBaseTemplateSet, s.entries.len())
	for k, t := range s.entries.all {
		out[k] = t.t
	}
	return out
}
