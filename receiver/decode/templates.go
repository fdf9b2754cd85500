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
// netflow.NetFlowTemplateSystem; it is used by one worker only, so it has no
// lock.
type templateStore struct {
	max int
	// fields is the number of fields of the stored templates, bounded by
	// fieldBudget: the templates' memory is in proportion to it, at most
	// about 20 bytes a field (TestTemplateMemoryPerField), 330 KB per
	// exporter at the default limits. Without it max templates of 16,000
	// fields each (a 64 KB template set) took 250 MB per exporter.
	fields, fieldBudget int
	templates           map[uint64]any
	// compiled holds the compiled form of data templates (see
	// fastpath.go) and of options templates with variable-length fields
	// (varlen.go).
	compiled map[uint64]*compiledTemplate
	// used holds the stored templates a data set has been decoded with
	// (see use); the others wait in unused, oldest first (with stale
	// entries: keys used, removed or forgotten since), and only they are
	// forgotten to make room for a new template. Source addresses are
	// easy to spoof: a flood of made-up templates in a real exporter's
	// name then forgets only made-up ones (and templates no data set has
	// used yet), never the templates the exporter's data sets use.
	// unusedN and unusedFields count the templates waiting and their
	// fields, so that a full store knows at once whether it can make room.
	used                  map[uint64]struct{}
	unused                []uint64
	unusedN, unusedFields int
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
	return &templateStore{max: limit, fieldBudget: max(limit*avgTemplateFields, maxTemplateFields),
		templates: make(map[uint64]any), compiled: make(map[uint64]*compiledTemplate),
		used: make(map[uint64]struct{})}
}

// use records that a data set was decoded with the stored template k.
func (s *templateStore) use(k uint64) {
	if _, ok := s.used[k]; ok {
		return
	}
	if t, ok := s.templates[k]; ok {
		s.used[k] = struct{}{}
		s.unusedN--
		s.unusedFields -= fieldCount(t)
	}
}

// isUnused reports whether k is a stored template no data set has used.
func (s *templateStore) isUnused(k uint64) bool {
	_, stored := s.templates[k]
	_, used := s.used[k]
	return stored && !used
}

// evictUnused forgets the oldest stored template no data set has used,
// other than keep, and reports whether there was one.
func (s *templateStore) evictUnused(keep uint64) bool {
	n := 0 // entries kept in front: keep's
	for i, k := range s.unused {
		if !s.isUnused(k) {
			continue // stale: dropped
		}
		if k == keep {
			s.unused[n] = k
			n++
			continue
		}
		n += copy(s.unused[n:], s.unused[i+1:])
		s.unused = s.unused[:n]
		s.forget(k)
		return true
	}
	s.unused = s.unused[:n]
	return false
}

// forget deletes the stored template k.
func (s *templateStore) forget(k uint64) any {
	t := s.templates[k]
	if s.isUnused(k) {
		s.unusedN--
		s.unusedFields -= fieldCount(t)
	}
	delete(s.templates, k)
	delete(s.compiled, k)
	delete(s.used, k)
	s.fields -= fieldCount(t)
	return t
}

// compactUnused drops unused's stale and repeated entries.
func (s *templateStore) compactUnused() {
	out := s.unused[:0]
	seen := make(map[uint64]bool, s.unusedN)
	for _, k := range s.unused {
		if s.isUnused(k) && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	s.unused = out
}

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
	k := templateKey(version, domain, id)
	old, ok := s.templates[k]
	// Room is made by forgetting templates no data set has used, oldest
	// first, and only if that makes enough: templates in use are kept,
	// and a template that cannot be stored makes nothing be forgotten.
	wasUnused := s.isUnused(k)
	freeN, freeFields := s.unusedN, s.unusedFields
	if wasUnused {
		freeN, freeFields = freeN-1, freeFields-fieldCount(old)
	}
	needSlot := !ok && len(s.templates) >= s.max
	if needSlot && freeN == 0 {
		return fmt.Errorf("template %d: %w", id, ErrTemplateLimit)
	}
	if over := s.fields - fieldCount(old) + n - s.fieldBudget; over > freeFields {
		return fmt.Errorf("template %d: the exporter's templates already have %d fields, at most %d: %w", id, s.fields, s.fieldBudget, ErrTemplateLimit)
	}
	if needSlot {
		s.evictUnused(k)
	}
	for s.fields-fieldCount(old)+n > s.fieldBudget && s.evictUnused(k) {
	}
	s.fields += n - fieldCount(old)
	s.templates[k] = t
	switch {
	case !ok:
		s.unusedN++
		s.unusedFields += n
		s.unused = append(s.unused, k)
		if len(s.unused) > 2*s.max+16 {
			s.compactUnused()
		}
	case wasUnused:
		s.unusedFields += n - fieldCount(old)
	}
	delete(s.compiled, k)
	var c *compiledTemplate
	switch tt := t.(type) {
	case netflow.TemplateRecord:
		c = compile(tt)
	case netflow.NFv9OptionsTemplateRecord:
		c = compileVariable(true, tt.Scopes, tt.Options)
	case netflow.IPFIXOptionsTemplateRecord:
		c = compileVariable(true, tt.Scopes, tt.Options)
	}
	if c != nil {
		s.compiled[k] = c
	}
	return nil
}

// GetTemplate returns a stored template or netflow.ErrorTemplateNotFound.
func (s *templateStore) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	if t, ok := s.templates[templateKey(version, domain, id)]; ok {
		return t, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

// RemoveTemplate deletes a template (IPFIX template withdrawal).
func (s *templateStore) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	k := templateKey(version, domain, id)
	if _, ok := s.templates[k]; !ok {
		return nil, netflow.ErrorTemplateNotFound
	}
	return s.forget(k), nil
}

// GetTemplates returns a copy of every template.
func (s *templateStore) GetTemplates() netflow.FlowBaseTemplateSet {
	out := make(netflow.FlowBaseTemplateSet, len(s.templates))
	for k, v := range s.templates {
		out[k] = v
	}
	return out
}
