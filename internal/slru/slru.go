// Package slru is a segmented LRU cache: a bounded map that, when full,
// forgets keys seen only once before keys seen again.
//
// New keys enter a probation segment; a key looked up again moves to a
// protected segment (at most three quarters of the cache). A key added to
// a full cache evicts the least recently used key on probation, and only
// when probation is empty the least recently used protected one. A
// protected key pushed out of its full segment goes back on probation, at
// its most recently used end.
//
// flowmetrics bounds its exporters with it (health figures, decoder state):
// a flood of one-off source addresses, which UDP lets anyone spoof, churns
// probation and leaves real exporters (and their templates) alone, where a
// plain LRU forgot every exporter after max_exporters spoofed datagrams.
//
// It is built on hashicorp/golang-lru's simplelru; like it, it is not safe
// for concurrent use.
package slru

import "github.com/hashicorp/golang-lru/v2/simplelru"

// Cache is a segmented LRU cache of at most Size keys.
type Cache[K comparable, V any] struct {
	probation, protected *simplelru.LRU[K, V]
	size, protectedSize  int
}

// New returns an empty cache for at most size keys (at least 1).
func New[K comparable, V any](size int) *Cache[K, V] {
	size = max(size, 1)
	c := &Cache[K, V]{size: size, protectedSize: max(1, size*3/4)}
	// The segments never evict on their own: Add makes room first.
	c.probation, _ = simplelru.NewLRU[K, V](size, nil)
	c.protected, _ = simplelru.NewLRU[K, V](size, nil)
	return c
}

// Get returns k's value and marks k used; a key on probation is promoted.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if v, ok := c.protected.Get(k); ok {
		return v, true
	}
	v, ok := c.probation.Peek(k)
	if !ok {
		return v, false
	}
	c.probation.Remove(k)
	if c.protected.Len() >= c.protectedSize {
		if dk, dv, ok := c.protected.RemoveOldest(); ok {
			c.probation.Add(dk, dv)
		}
	}
	c.protected.Add(k, v)
	return v, true
}

// Add puts k, which must not be in the cache, on probation. If the cache
// was full it evicts a key (see the package comment) and returns it.
func (c *Cache[K, V]) Add(k K, v V) (evictedKey K, evictedValue V, evicted bool) {
	if c.Len() >= c.size {
		seg := c.probation
		if seg.Len() == 0 {
			seg = c.protected
		}
		evictedKey, evictedValue, evicted = seg.RemoveOldest()
	}
	c.probation.Add(k, v)
	return evictedKey, evictedValue, evicted
}

// Len returns the number of keys in the cache.
func (c *Cache[K, V]) Len() int { return c.probation.Len() + c.protected.Len() }

// Values returns the values, those on probation first, each segment least
// recently used first.
func (c *Cache[K, V]) Values() []V {
	return append(c.probation.Values(), c.protected.Values()...)
}
