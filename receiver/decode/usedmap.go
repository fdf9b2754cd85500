package decode

// usedMap holds one exporter's state per sampler, observation domain or
// sequence source, at most limit entries, and tells entries that data has
// used from those only stored.
//
// When it is full, a new key takes the place of the oldest entry nothing
// has used since it was stored (get marks an entry used), and is refused
// only when every entry is in use. Datagrams forged with a real exporter's
// address and made-up sampler ids or domains (whose data, if any, never
// comes) therefore fill it only with entries the next real key replaces,
// where first come, first kept would have refused every real key after
// them for as long as the exporter is tracked. The template store does the
// same for templates (templateStore.unused).
type usedMap[K comparable, V any] struct {
	m map[K]usedEntry[V]
	// waiting holds the keys stored and not used since, oldest first,
	// among keys used since (skipped when found first): each key of m at
	// most once, so never more than the largest limit put was given
	// (today always the same: MaxSamplers is not configurable and the
	// sequence limit is a constant).
	waiting []K
	unused  int // entries of m not used since stored
}

type usedEntry[V any] struct {
	v    V
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
	}
	return e.v, ok
}

// peek returns k's value without marking it.
func (u *usedMap[K, V]) peek(k K) (V, bool) {
	e, ok := u.m[k]
	return e.v, ok
}

// put stores v under k. A key already present keeps its mark; a new one
// waits unused, in the place of the oldest unused entry if there are
// limit entries already. put reports false, storing nothing, when the map
// is full of entries in use.
func (u *usedMap[K, V]) put(k K, v V, limit int) bool {
	if e, ok := u.m[k]; ok {
		e.v = v
		u.m[k] = e
		return true
	}
	if len(u.m) >= limit {
		if u.unused == 0 {
			return false
		}
		u.forgetOldestUnused()
	}
	u.m[k] = usedEntry[V]{v: v}
	u.unused++
	u.waiting = append(u.waiting, k)
	return true
}

// forgetOldestUnused removes the oldest entry not used since stored; there
// must be one.
func (u *usedMap[K, V]) forgetOldestUnused() {
	for i, k := range u.waiting {
		if e, ok := u.m[k]; ok && !e.used {
			delete(u.m, k)
			u.unused--
			// Drop it and the used keys before it; copying keeps the
			// array from creeping forward and growing.
			u.waiting = u.waiting[:copy(u.waiting, u.waiting[i+1:])]
			return
		}
	}
}

// len returns how many entries are stored.
func (u *usedMap[K, V]) len() int { return len(u.m) }
