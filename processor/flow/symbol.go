package flow

import (
	"strconv"
	"sync"
)

// Label values with a meaning of their own in every family (see
// processor/aggregate). A configured network name, tenant or service name
// may not take one (Reserved): its series would carry the same labels as
// another series of the family, which a scrape or the Collector's
// Prometheus exporter would merge or refuse.
const (
	// OtherValue marks a family's overflow series.
	OtherValue = "other"
	// UnknownValue is an enrichment label of a record that matched nothing.
	UnknownValue = "unknown"
	// NoServiceValue is the service of a record without ports.
	NoServiceValue = "none"
)

// Reserved reports whether v is one of the label values above.
func Reserved(v string) bool {
	return v == OtherValue || v == UnknownValue || v == NoServiceValue
}

// Symbol is an interned label value: a network name, a tenant, a service
// name. Records and series keys carry the small id instead of the string, so
// they stay pointer-free and cheap to compare; the string is looked up once,
// when a series is admitted.
//
// The symbol table is process-wide and append-only: an id keeps its meaning
// across configuration reloads, so a series keyed by it never changes name.
// Its size is bounded by MaxSymbols; past it Intern returns the zero Symbol,
// which configuration validation prevents (InternRoom): only configuration
// adds symbols, and a reload that would pass the bound is refused.
type Symbol uint32

// MaxSymbols bounds the symbol table. Symbols come from configuration
// (network names, tenants, service names), never from traffic.
const MaxSymbols = 1 << 20

var symbols = struct {
	sync.RWMutex
	names []string
	ids   map[string]Symbol
}{names: []string{""}, ids: map[string]Symbol{"": 0}}

// Intern returns the Symbol of s, adding it to the table if needed. The
// empty string is the zero Symbol.
func Intern(s string) Symbol {
	symbols.RLock()
	id, ok := symbols.ids[s]
	symbols.RUnlock()
	if ok {
		return id
	}
	symbols.Lock()
	defer symbols.Unlock()
	if id, ok := symbols.ids[s]; ok {
		return id
	}
	if len(symbols.names) >= MaxSymbols {
		return 0
	}
	id = Symbol(len(symbols.names))
	symbols.names = append(symbols.names, s)
	symbols.ids[s] = id
	return id
}

// InternRoom reports whether every string of names could be interned
// without exceeding MaxSymbols, and how many of them are new. Configuration
// validation calls it before a load or reload interns the names.
func InternRoom(names []string) (ok bool, added int) {
	return internRoom(names, MaxSymbols)
}

func internRoom(names []string, limit int) (ok bool, added int) {
	symbols.RLock()
	defer symbols.RUnlock()
	seen := map[string]bool{}
	for _, n := range names {
		if _, known := symbols.ids[n]; !known && !seen[n] {
			seen[n] = true
			added++
		}
	}
	return len(symbols.names)+added <= limit, added
}

// Symbols returns how many symbols have been interned (including the
// empty one).
func Symbols() int {
	symbols.RLock()
	defer symbols.RUnlock()
	return len(symbols.names)
}

// String returns the interned string; "" for the zero Symbol or an id never
// handed out.
func (s Symbol) String() string {
	symbols.RLock()
	defer symbols.RUnlock()
	if int(s) < len(symbols.names) {
		return symbols.names[s]
	}
	return ""
}

// Service names the application of a flow: a named service or group (a
// Symbol, such as "https" or "ephemeral") or a bare port number. The zero
// Service is "not classified".
type Service uint32

const servicePort = 1 << 31

// ServiceFromPort is the Service of a port without a name; it renders as the
// port number.
func ServiceFromPort(p uint16) Service { return Service(servicePort | uint32(p)) }

// ServiceFromSymbol is the Service named by s.
func ServiceFromSymbol(s Symbol) Service { return Service(s) }

// Port returns the bare port of a Service made by ServiceFromPort.
func (s Service) Port() (uint16, bool) {
	if s&servicePort != 0 {
		return uint16(s), true
	}
	return 0, false
}

// String returns the label value: the service name, or the port number, or
// "" for the zero Service.
func (s Service) String() string {
	if p, ok := s.Port(); ok {
		return strconv.Itoa(int(p))
	}
	return Symbol(s).String()
}
