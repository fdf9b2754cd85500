package slru

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCache replays sequences of lookups ("g k": Get, adding k on a miss as
// callers do) and checks what each evicts and what the cache holds after.
func TestCache(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		gets    []int
		evicted []int // in order
		want    []int // Values() after
	}{
		{"under capacity", 4, []int{1, 2, 3}, nil, []int{1, 2, 3}},
		{"one-off keys evict the oldest", 2, []int{1, 2, 3, 4}, []int{1, 2}, []int{3, 4}},
		{"a key seen again outlives one-off keys", 4, []int{1, 1, 2, 3, 4, 5, 6, 7}, []int{2, 3, 4}, []int{5, 6, 7, 1}},
		// Keys seen again fill at most three quarters (3 of 4), so a full
		// cache of size 2 or more always has a key on probation to evict:
		// only at size 1 is a protected key evicted (see "size 1").
		{"keys seen again under capacity evict nothing", 4, []int{1, 1, 2, 2, 3, 3, 4}, []int{}, []int{4, 1, 2, 3}},
		{"full protected segment demotes its oldest", 4, []int{1, 1, 2, 2, 3, 3, 4, 4}, []int{}, []int{1, 2, 3, 4}},
		{"a demoted key is evicted before newer ones", 4, []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 6}, []int{1, 5}, []int{6, 2, 3, 4}},
		{"size 1", 1, []int{1, 1, 2, 2, 3}, []int{1, 2}, []int{3}},
		{"size 2: one key protected", 2, []int{1, 1, 2, 2, 3, 4}, []int{1, 3}, []int{4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[int, int](tt.size)
			evicted := []int{}
			for _, k := range tt.gets {
				if v, ok := c.Get(k); ok {
					if v != 10*k {
						t.Fatalf("Get(%d) = %d, want %d", k, v, 10*k)
					}
					continue
				}
				if ek, ev, ok := c.Add(k, 10*k); ok {
					if ev != 10*ek {
						t.Fatalf("evicted %d with value %d", ek, ev)
					}
					evicted = append(evicted, ek)
				}
			}
			if tt.evicted == nil {
				tt.evicted = []int{}
			}
			if !slices.Equal(evicted, tt.evicted) {
				t.Errorf("evicted %v, want %v", evicted, tt.evicted)
			}
			var got []int
			for _, v := range c.Values() {
				got = append(got, v/10)
			}
			if !slices.Equal(got, tt.want) || c.Len() != len(tt.want) {
				t.Errorf("holds %v (Len %d), want %v", got, c.Len(), tt.want)
			}
		})
	}
}

// TestFloodKeepsReturningKeys: keys seen twice before a flood (established
// exporters) stay through any number of one-off keys (spoofed sources)
// interleaved with them, as long as they fit in the protected segment; the
// cache never holds more than its size.
func TestFloodKeepsReturningKeys(t *testing.T) {
	const size = 64
	c := New[int, int](size)
	real := []int{-1, -2, -3, -4, -5}
	get := func(k int) {
		if _, ok := c.Get(k); !ok {
			c.Add(k, k)
		}
	}
	for range 2 {
		for _, k := range real {
			get(k)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	misses := 0
	for i := range 100_000 {
		get(i) // a new source each time
		if rng.IntN(50) == 0 {
			k := real[rng.IntN(len(real))]
			if _, ok := c.Get(k); !ok {
				misses++
				c.Add(k, k)
			}
		}
		if c.Len() > size {
			t.Fatalf("Len %d > %d", c.Len(), size)
		}
	}
	if misses != 0 {
		t.Errorf("real keys forgotten %d times during the flood", misses)
	}
	for _, k := range real {
		if _, ok := c.Get(k); !ok {
			t.Errorf("real key %d forgotten", k)
		}
	}
}

// TestInvariants: at every size, through random lookups, the cache holds
// at most size keys, the protected segment at most its share, a key just
// added is held and an evicted one is not, and every hit returns the
// key's own value.
func TestInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for size := 1; size <= 9; size++ {
		c := New[int, int](size)
		for range 5000 {
			k := rng.IntN(3 * size)
			if v, ok := c.Get(k); ok {
				if v != -k {
					t.Fatalf("size %d: Get(%d) = %d", size, k, v)
				}
			} else if ek, ev, ok := c.Add(k, -k); ok {
				if ek == k || ev != -ek {
					t.Fatalf("size %d: adding %d evicted %d (value %d)", size, k, ek, ev)
				}
				if _, held := c.probation.Peek(ek); held || c.protected.Contains(ek) {
					t.Fatalf("size %d: evicted %d still held", size, ek)
				}
			}
			if !c.probation.Contains(k) && !c.protected.Contains(k) {
				t.Fatalf("size %d: %d not held after its lookup", size, k)
			}
			if c.Len() > size || c.protected.Len() > c.protectedSize {
				t.Fatalf("size %d: %d keys, %d protected (at most %d)", size, c.Len(), c.protected.Len(), c.protectedSize)
			}
		}
	}
}
