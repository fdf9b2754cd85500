package enrich

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Interface is what is known of one interface of an exporter.
type Interface struct {
	// Exporter is the device's address, as flows arrive from it.
	Exporter netip.Addr
	// Index is the SNMP ifIndex, as flow records name interfaces.
	Index uint32
	// Name is ifName (or the configured name); Alias is ifAlias, the
	// operator's description.
	Name, Alias string
	// Speed is the interface speed in bits per second; 0 when unknown.
	Speed uint64
}

// Validate reports the first problem in a static interface entry.
func (i Interface) Validate() error {
	if !i.Exporter.IsValid() {
		return errors.New("exporter: must be an address")
	}
	if i.Name == "" && i.Alias == "" && i.Speed == 0 {
		return errors.New("name: one of name, alias or speed_bps must be set")
	}
	return nil
}

// MaxTextBytes bounds an interface name or alias, in bytes.
const MaxTextBytes = 256

// CleanText returns s as an interface name or alias may be published: valid
// UTF-8, each invalid byte sequence replaced by U+FFFD (agents send ifAlias
// in whatever charset the operator typed it, Latin-1 often, and label values
// must be UTF-8), and at most MaxTextBytes long, cut on a rune boundary.
func CleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > MaxTextBytes {
		i := MaxTextBytes
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return s
}

// MaxPolledInterfaces bounds the interfaces kept per polled exporter.
const MaxPolledInterfaces = 16384

type ifKey struct {
	exporter netip.Addr
	index    uint32
}

// PollStatus is the SNMP state of one exporter.
type PollStatus struct {
	Exporter netip.Addr
	// Since is when the exporter's status was created: Successes and
	// Failures count from then. An exporter forgotten (Forget, Retain)
	// and polled again starts from zero with a later Since.
	Since time.Time
	// Successes and Failures count polls.
	Successes, Failures uint64
	// LastSuccess is the time of the last successful poll.
	LastSuccess time.Time
	// Interfaces is the number of interfaces the last successful poll
	// returned.
	Interfaces int
}

// Interfaces holds interface names, aliases and speeds per exporter, from
// static configuration and from SNMP polls. Static fields win over polled
// ones field by field. It is safe for concurrent use; it is read at
// exposition time, never per record.
type Interfaces struct {
	mu     sync.RWMutex
	static map[ifKey]Interface
	polled map[netip.Addr]map[uint32]Interface
	status map[netip.Addr]*PollStatus
}

// NewInterfaces returns an empty store.
func NewInterfaces() *Interfaces {
	return &Interfaces{static: map[ifKey]Interface{}, polled: map[netip.Addr]map[uint32]Interface{}, status: map[netip.Addr]*PollStatus{}}
}

// SetStatic replaces the configured interfaces.
func (t *Interfaces) SetStatic(ifs []Interface) {
	m := make(map[ifKey]Interface, len(ifs))
	for _, i := range ifs {
		i.Exporter = i.Exporter.Unmap()
		m[ifKey{i.Exporter, i.Index}] = i
	}
	t.mu.Lock()
	t.static = m
	t.mu.Unlock()
}

// SetPolled replaces what an SNMP poll of exporter returned (at most
// MaxPolledInterfaces are kept) and counts a successful poll.
func (t *Interfaces) SetPolled(exporter netip.Addr, ifs []Interface, now time.Time) {
	exporter = exporter.Unmap()
	m := make(map[uint32]Interface, min(len(ifs), MaxPolledInterfaces))
	for _, i := range ifs {
		if len(m) >= MaxPolledInterfaces {
			break
		}
		i.Exporter = exporter
		m[i.Index] = i
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.polled[exporter] = m
	st := t.statusOf(exporter)
	st.Successes++
	st.LastSuccess = now
	st.Interfaces = len(m)
}

// PollFailed counts a failed SNMP poll of exporter; what an earlier poll
// returned is kept.
func (t *Interfaces) PollFailed(exporter netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.statusOf(exporter.Unmap()).Failures++
}

// Forget drops what was polled from exporter (for example when it is no
// longer polled).
func (t *Interfaces) Forget(exporter netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.polled, exporter.Unmap())
	delete(t.status, exporter.Unmap())
}

// Retain forgets what was polled from every exporter for which keep
// returns false (for example those no longer polled, or no longer sending
// flows), and returns how many were forgotten. keep is called under the
// store's lock and must not call it.
func (t *Interfaces) Retain(keep func(netip.Addr) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for a := range t.status {
		if !keep(a) {
			delete(t.status, a)
			delete(t.polled, a)
			n++
		}
	}
	for a := range t.polled { // normally every polled exporter has a status
		if !keep(a) {
			delete(t.polled, a)
			n++
		}
	}
	return n
}

func (t *Interfaces) statusOf(a netip.Addr) *PollStatus {
	st := t.status[a]
	if st == nil {
		st = &PollStatus{Exporter: a, Since: time.Now()}
		t.status[a] = st
	}
	return st
}

// Lookup returns what is known of one interface.
func (t *Interfaces) Lookup(exporter netip.Addr, index uint32) (Interface, bool) {
	exporter = exporter.Unmap()
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, okp := t.polled[exporter][index]
	s, oks := t.static[ifKey{exporter, index}]
	return merge(p, s, okp, oks), okp || oks
}

func merge(polled, static Interface, okp, oks bool) Interface {
	switch {
	case !oks:
		return polled
	case !okp:
		return static
	}
	out := polled
	if static.Name != "" {
		out.Name = static.Name
	}
	if static.Alias != "" {
		out.Alias = static.Alias
	}
	if static.Speed != 0 {
		out.Speed = static.Speed
	}
	return out
}

// Snapshot returns every known interface, sorted by exporter and index.
func (t *Interfaces) Snapshot() []Interface {
	t.mu.RLock()
	out := make([]Interface, 0, len(t.static))
	for k, s := range t.static {
		p, okp := t.polled[k.exporter][k.index]
		out = append(out, merge(p, s, okp, true))
	}
	for ex, m := range t.polled {
		for idx, p := range m {
			if _, ok := t.static[ifKey{ex, idx}]; !ok {
				out = append(out, p)
			}
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Interface) int {
		if c := a.Exporter.Compare(b.Exporter); c != 0 {
			return c
		}
		return cmp.Compare(a.Index, b.Index)
	})
	return out
}

// PollStatuses returns the SNMP state of every polled exporter, sorted by
// address.
func (t *Interfaces) PollStatuses() []PollStatus {
	t.mu.RLock()
	out := make([]PollStatus, 0, len(t.status))
	for _, s := range t.status {
		out = append(out, *s)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b PollStatus) int { return a.Exporter.Compare(b.Exporter) })
	return out
}
