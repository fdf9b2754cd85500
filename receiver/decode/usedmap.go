package decode

import "slices"

// usedMap holds one exporter's templates, or its state per sampler,
// observation domain or sequence source: at most limit entries (and, for
// templates, at most a budget of fields), telling entries that data has
// used from those only stored.
//
// When it is full, a new entry takes the place of the oldest entries
// nothing has used since they were stored (get marks an entry used), and
// is refused only when forgetting all of those would not make room; then
// nothing is forgotten. Datagrams forged with a real exporter's address
// and made-up templates, sampler ids or domains (whose data, if any, never
// comes) therefore fill it only with entries the next real one replaces,
// where first come, first kept would have refused every real entry after
// them for as long as the exporter is tracked.
type usedMap[K comparable, V any] struct {
	m map[K]usedEntry[V]
	// waiting holds the keys stored and not used since, oldest first,
	// among keys used since (skipped when found first): each key of m at
	// most once and no other, so never more than limit.
	waiting []K
	// unused counts the entries not used since stored; weight sums the
	// entries' weights and unusedWeight those of the unused ones.
	unused, weight, unusedWeight int
}

type usedEntry[V any] struct {
	v    V
	w    int // weight (a template's fields; 0 elsewhere)
	used bool
}

func newUsedMap[K comparable, V any]() usedMap[K, V] {
	return usedMap[K, V]{m: make(map[K]usedEntry[V])}
}

// get returns k's value and marks it used.
func (u *usedMap[K, V]) get(k K) (V, bool) {
	e, ok := u.m[k]
	if ok && !e.used {
		e.used = true
		u.m[k] = e
		u.unused--
		u.unusedWeight -= e.w
	}
	return e.v, ok
}

// peek returns k's value without marking it.
func (u *usedMap[K, V]) peek(k K) (V, bool) {
	e, ok := u.m[k]
	return e.v, ok
}

// put stores v (weight 0) under k among at most limit entries; it reports
// false, storing nothing, when the map is full of entries in use.
func (u *usedMap[K, V]) put(k K, v V, limit int) bool {
	if u.room(k, 0, limit, 0) != roomFits {
		return false
	}
	u.store(k, v, 0, limit, 0)
	return true
}

// roomFor is what room reports.
type roomFor uint8

const (
	roomFits   roomFor = iota
	roomLimit          // limit entries, and none to forget
	roomBudget         // forgetting every unused entry leaves the budget short
)

// room reports whether store(k, v, w, limit, budget) can store k, after
// forgetting entries not used since stored (never k's own).
func (u *usedMap[K, V]) room(k K, w, limit, budget int) roomFor {
	e, ok := u.m[k]
	freeN, freeW := u.unused, u.unusedWeight
	if ok && !e.used {
		freeN, freeW = freeN-1, freeW-e.w
	}
	switch {
	case !ok && len(u.m) >= limit && freeN == 0:
		return roomLimit
	case u.weight-e.w+w-budget > freeW:
		return roomBudget
	}
	return roomFits
}

// store stores v, of weight w, under k, for which room has reported
// roomFits: it forgets the oldest entries not used since stored until k
// fits among limit entries of total weight budget. A key already present
// keeps its mark and its place among the waiting; a new one waits,
// unused, behind all others.
func (u *usedMap[K, V]) store(k K, v V, w, limit, budget int) {
	e, ok := u.m[k]
	if !ok && len(u.m) >= limit {
		u.forgetOldestUnused(&k)
	}
	for u.weight-e.w+w > budget && u.forgetOldestUnused(&k) {
	}
	u.weight += w - e.w
	if !ok {
		u.unused++
		u.waiting = append(u.waiting, k)
	}
	if !e.used {
		u.unusedWeight += w - e.w
	}
	u.m[k] = usedEntry[V]{v: v, w: w, used: e.used}
}

// shrink forgets the oldest entries not used since stored until at most
// limit entries of total weight at most budget are left, and reports
// whether that was enough.
func (u *usedMap[K, V]) shrink(limit, budget int) bool {
	for len(u.m) > limit || u.weight > budget {
		if !u.forgetOldestUnused(nil) {
			return false
		}
	}
	return true
}

// forgetOldestUnused removes the oldest entry not used since stored, other
// than keep's (if keep is not nil), and reports whether there was one.
func (u *usedMap[K, V]) forgetOldestUnused(keep *K) bool {
	n := 0 // keys kept in front: keep's, if it came first
	for i, k := range u.waiting {
		e := u.m[k]
		switch {
		case e.used:
			continue // used since: dropped with the keys before the one forgotten
		case keep != nil && k == *keep:
			u.waiting[n] = k
			n++
			continue
		}
		u.forget(k, e)
		u.waiting = u.waiting[:n+copy(u.waiting[n:], u.waiting[i+1:])]
		return true
	}
	u.waiting = u.waiting[:n]
	return false
}

// forget deletes k, whose entry is e, from m and the counts.
func (u *usedMap[K, V]) forget(k K, e usedEntry[V]) {
	delete(u.m, k)
	u.weight -= e.w
	if !e.used {
		u.unused--
		u.unusedWeight -= e.w
	}
}

// remove deletes k and returns its value.
func (u *usedMap[K, V]) remove(k K) (V, bool) {
	e, ok := u.m[k]
	if ok {
		u.forget(k, e)
		if i := slices.Index(u.waiting, k); i >= 0 {
			u.waiting = slices.Delete(u.waiting, i, i+1)
		}
	}
	return e.v, ok
}

// len returns how many entries are stored.
func (u *usedMap[K, V]) len() int { return len(u.m) }

// all yields every key and value, in no order.
func (u *usedMap[K, V]) all(yield func(K, V) bool) {
	for k, e := range u.m {
		if !yield(k, e.v) {
			return
		}
	}
}
