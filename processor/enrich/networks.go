package enrich

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// Network roles.
const (
	// RoleInternal marks a network of the operator's own (the default).
	RoleInternal = "internal"
	// RoleExternal marks a named network outside: it labels flows but does
	// not make them internal for direction classification.
	RoleExternal = "external"
)

// Network maps a prefix to labels.
type Network struct {
	// Prefix is the network; the most specific prefix containing an address
	// wins.
	Prefix netip.Prefix
	// Name is the src_net/dst_net label value; empty means the prefix
	// itself.
	Name string
	// Tenant is the tenant label value; empty means none.
	Tenant string
	// Role is RoleInternal (or empty) or RoleExternal.
	Role string
}

// Validate reports the first problem in n.
func (n Network) Validate() error {
	if !n.Prefix.IsValid() {
		return errors.New("prefix: must be a CIDR")
	}
	switch n.Role {
	case "", RoleInternal, RoleExternal:
	default:
		return fmt.Errorf("role: must be %q or %q, got %q", RoleInternal, RoleExternal, n.Role)
	}
	if flow.Reserved(n.Name) {
		return fmt.Errorf("name: %q is reserved (overflow and unmatched series use it)", n.Name)
	}
	if flow.Reserved(n.Tenant) {
		return fmt.Errorf("tenant: %q is reserved (overflow and unmatched series use it)", n.Tenant)
	}
	return nil
}

// UnmapPrefix returns p masked, and an IPv4-mapped IPv6 prefix of at
// least 96 bits (::ffff:198.51.100.0/120) as the IPv4 prefix it covers
// (198.51.100.0/24): IPv4 addresses, mapped or not, are looked up among the
// IPv4 prefixes, where a mapped prefix would never match.
func UnmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// netInfo is what a lookup returns: interned labels and the role.
type netInfo struct {
	name, tenant flow.Symbol
	internal     bool
}

// u128 is an address as a 128-bit number (IPv4 as IPv4-mapped IPv6).
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	b := a.As16()
	return u128{
		hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		lo: uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]),
	}
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) cmp(b u128) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func (a u128) inc() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func (a u128) dec() u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

var maxU128 = u128{^uint64(0), ^uint64(0)}

// prefixRange returns the first and last address of p, IPv4 mapped.
func prefixRange(p netip.Prefix) (u128, u128) {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	start := u128From(p.Addr())
	end := start
	// set the host bits
	switch {
	case bits >= 128:
	case bits >= 64:
		end.lo |= ^uint64(0) >> (bits - 64)
	default:
		end.lo = ^uint64(0)
		end.hi |= ^uint64(0) >> bits
	}
	return start, end
}

// segment is a disjoint address range and the network covering it.
type segment struct {
	start, end u128
	net        int32
}

// networkTable is an immutable longest-prefix-match table: IPv4 and IPv6
// are kept apart, so ::/0 does not match IPv4 addresses.
type networkTable struct {
	segs4, segs6 []segment
	nets         []netInfo
}

// prefixEntry is one prefix as a range, for flattening.
type prefixEntry struct {
	start, end u128
	bits       int
	idx        int32
}

// newNetworkTable builds the table; a prefix listed twice keeps its last
// entry, IPv4-mapped prefixes count as IPv4 (UnmapPrefix). nets must be
// valid.
func newNetworkTable(nets []Network) *networkTable {
	if len(nets) == 0 {
		return nil
	}
	last := map[netip.Prefix]int{}
	for i, n := range nets {
		last[UnmapPrefix(n.Prefix)] = i
	}
	t := &networkTable{}
	var v4, v6 []prefixEntry
	for i, n := range nets {
		p := UnmapPrefix(n.Prefix)
		if last[p] != i {
			continue
		}
		name := n.Name
		if name == "" {
			name = p.String()
		}
		t.nets = append(t.nets, netInfo{name: flow.Intern(name), tenant: flow.Intern(n.Tenant), internal: n.Role != RoleExternal})
		s, e := prefixRange(p)
		e4 := prefixEntry{start: s, end: e, bits: p.Bits(), idx: int32(len(t.nets) - 1)}
		if p.Addr().Is4() {
			v4 = append(v4, e4)
		} else {
			v6 = append(v6, e4)
		}
	}
	t.segs4, t.segs6 = flatten(v4), flatten(v6)
	return t
}

// flatten turns nested or disjoint prefixes into sorted disjoint segments,
// each naming the most specific prefix that covers it.
func flatten(es []prefixEntry) []segment {
	// Outer prefixes first at equal starts; prefixes nest or are disjoint.
	slices.SortFunc(es, func(a, b prefixEntry) int {
		if c := a.start.cmp(b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.bits, b.bits)
	})
	var segs []segment
	var stack []prefixEntry
	var pos u128
	emit := func(s, e u128, idx int32) {
		if e.less(s) {
			return
		}
		if n := len(segs); n > 0 && segs[n-1].net == idx && segs[n-1].end.inc() == s {
			segs[n-1].end = e
			return
		}
		segs = append(segs, segment{start: s, end: e, net: idx})
	}
	// closeUntil pops the open prefixes that end before limit (all of them
	// when all is set), emitting what is left of each.
	closeUntil := func(limit u128, all bool) {
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if !all && !top.end.less(limit) {
				return
			}
			emit(pos, top.end, top.idx)
			stack = stack[:len(stack)-1]
			if top.end == maxU128 {
				stack = stack[:0]
				return
			}
			pos = top.end.inc()
		}
	}
	for _, e := range es {
		closeUntil(e.start, false)
		if len(stack) > 0 && pos.less(e.start) {
			emit(pos, e.start.dec(), stack[len(stack)-1].idx)
		}
		pos = e.start
		stack = append(stack, e)
	}
	closeUntil(maxU128, true)
	return segs
}

// lookup returns the most specific network containing a, or nil.
func (t *networkTable) lookup(a netip.Addr) *netInfo {
	if t == nil || !a.IsValid() {
		return nil
	}
	segs := t.segs6
	if a.Is4() || a.Is4In6() {
		segs = t.segs4
	}
	x := u128From(a)
	lo, hi := 0, len(segs)
	for lo < hi { // first segment starting after x
		m := int(uint(lo+hi) >> 1)
		if x.less(segs[m].start) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return nil
	}
	s := &segs[lo-1]
	if s.end.less(x) {
		return nil
	}
	return &t.nets[s.net]
}

// networkColumns are the columns a networks file may have.
var networkColumns = []string{"prefix", "name", "tenant", "role"}

// ReadNetworksFile reads a networks file; see ParseNetworks for the format.
// Errors in its content name the file and the line.
func ReadNetworksFile(path string) ([]Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	nets, err := ParseNetworks(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return nets, nil
}

// utf8BOM is the byte order mark spreadsheet programs (Excel's "CSV UTF-8")
// put at the start of a file.
const utf8BOM = "\uFEFF"

// separatorWindow is how much of a networks file separator reads.
const separatorWindow = 64 << 10

// separator is the field separator of the CSV text in br: a semicolon when
// the header line (the first that is neither blank nor a comment, within
// the first 64 KiB) has semicolons and no comma, as spreadsheets in locales
// with a decimal comma write CSV; a comma otherwise. It reads nothing from
// br, whose buffer must hold separatorWindow bytes (bufio.NewReaderSize).
func separator(br *bufio.Reader) rune {
	head, _ := br.Peek(separatorWindow) // what there is, at the end of a short text
	for line := range strings.Lines(string(head)) {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.Contains(l, ";") && !strings.Contains(l, ",") {
			return ';'
		}
		break
	}
	return ','
}

// ParseNetworks reads networks in CSV form (RFC 4180, as encoding/csv reads
// it): a header line naming the columns (prefix, and any of name, tenant,
// role; in any case), then one network per line. Fields are separated by
// commas, or by semicolons when the header has semicolons and no comma. Fields may be quoted ("Office, Berlin");
// lines whose first field starts with # are comments; blank lines and rows
// of empty fields (",,,") are skipped; fields are trimmed. The text must be UTF-8, with or without a
// leading byte order mark. IPv4-mapped IPv6 prefixes are read as the IPv4
// prefixes they cover (see UnmapPrefix). Errors name the line.
func ParseNetworks(r io.Reader) ([]Network, error) {
	// Room for separator's look at the first 64 KiB: Peek returns no
	// more than the buffer holds (4 KiB by default).
	br := bufio.NewReaderSize(r, separatorWindow)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.Comma = separator(br)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1 // checked against the header below, naming the line
	var cols []string
	var out []Network
	seen := map[netip.Prefix]int{}
	for {
		fields, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %w", pe.Line, pe.Err)
			}
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		if !slices.ContainsFunc(fields, func(f string) bool { return f != "" }) || strings.HasPrefix(fields[0], "#") {
			// A line of blanks, a row of empty cells (",,,", which
			// spreadsheets write for rows once used or formatted), or an
			// indented comment.
			continue
		}
		for _, f := range fields {
			if !utf8.ValidString(f) {
				return nil, fmt.Errorf("line %d: %q is not valid UTF-8 (save the file as UTF-8)", line, f)
			}
		}
		if cols == nil {
			for _, c := range fields {
				c = strings.ToLower(c) // "Prefix", as spreadsheets title columns
				if !slices.Contains(networkColumns, c) {
					return nil, fmt.Errorf("line %d: unknown column %q (known: %s)", line, c, strings.Join(networkColumns, ", "))
				}
				if slices.Contains(cols, c) {
					return nil, fmt.Errorf("line %d: column %q listed twice", line, c)
				}
				cols = append(cols, c)
			}
			if !slices.Contains(cols, "prefix") {
				return nil, fmt.Errorf("line %d: the header must name a prefix column", line)
			}
			continue
		}
		if len(fields) != len(cols) {
			return nil, fmt.Errorf("line %d: %d fields, the header has %d", line, len(fields), len(cols))
		}
		var n Network
		for i, c := range cols {
			switch c {
			case "prefix":
				p, err := netip.ParsePrefix(fields[i])
				if err != nil {
					return nil, fmt.Errorf("line %d: prefix %q is not a CIDR", line, fields[i])
				}
				n.Prefix = UnmapPrefix(p)
			case "name":
				n.Name = fields[i]
			case "tenant":
				n.Tenant = fields[i]
			case "role":
				n.Role = fields[i]
			}
		}
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, ok := seen[n.Prefix]; ok {
			return nil, fmt.Errorf("line %d: prefix %s already listed on line %d", line, n.Prefix, prev)
		}
		seen[n.Prefix] = line
		out = append(out, n)
	}
	if cols == nil {
		return nil, errors.New("line 1: missing header (e.g. prefix,name,tenant,role)")
	}
	return out, nil
}
