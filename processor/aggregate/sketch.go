package aggregate

import (
	"cmp"
	"slices"
)

// spaceSaving is the Space-Saving heavy-hitter sketch (Metwally et al.): a
// fixed number of counters; an untracked key replaces the smallest counter
// and inherits its count as error. count-err is a lower bound on the key's
// true weight in the window, which is what admission compares.
//
// It is a hand-written min-heap over a flat slice with a map index: no
// allocation once full, O(log n) per update.
type spaceSaving struct {
	cap   int
	heap  []ssEntry
	index map[Key]int
}

type ssEntry struct {
	key   Key
	count uint64
	err   uint64
}

func newSpaceSaving(capacity int) *spaceSaving {
	return &spaceSaving{cap: capacity, heap: make([]ssEntry, 0, capacity), index: make(map[Key]int, capacity)}
}

// add counts w for k.
func (s *spaceSaving) add(k Key, w uint64) {
	if i, ok := s.index[k]; ok {
		s.heap[i].count += w
		s.down(i)
		return
	}
	if len(s.heap) < s.cap {
		s.heap = append(s.heap, ssEntry{key: k, count: w})
		i := len(s.heap) - 1
		s.index[k] = i
		s.up(i)
		return
	}
	// Replace the minimum.
	min := &s.heap[0]
	delete(s.index, min.key)
	min.key, min.err, min.count = k, min.count, min.count+w
	s.index[k] = 0
	s.down(0)
}

// top returns the entries whose guaranteed weight (count-err) is positive,
// heaviest first.
func (s *spaceSaving) top() []ssEntry {
	out := make([]ssEntry, 0, len(s.heap))
	for _, e := range s.heap {
		if e.count > e.err {
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

func (s *spaceSaving) reset() {
	s.heap = s.heap[:0]
	clear(s.index)
}

func (s *spaceSaving) less(i, j int) bool { return s.heap[i].count < s.heap[j].count }

func (s *spaceSaving) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.index[s.heap[i].key] = i
	s.index[s.heap[j].key] = j
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

func sortEntries(e []ssEntry) {
	slices.SortFunc(e, func(a, b ssEntry) int { return cmp.Compare(b.count-b.err, a.count-a.err) })
}

func sortSeriesByWindow(s []*series) {
	slices.SortFunc(s, func(a, b *series) int { return cmp.Compare(a.window, b.window) })
}
