package decode

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestUsedMapMatchesModel runs random gets and puts against a plain model
// (entries in the order stored, each with its mark; a full map forgets the
// first unmarked one) and checks every answer, every value, the unused
// count, and that the waiting list never outgrows the limit.
func TestUsedMapMatchesModel(t *testing.T) {
	for _, limit := range []int{1, 2, 5, 64} {
		rng := rand.New(rand.NewPCG(uint64(limit), 5))
		type entry struct {
			k, v uint32
			used bool
		}
		var model []entry
		find := func(k uint32) int {
			return slices.IndexFunc(model, func(e entry) bool { return e.k == k })
		}
		u := newUsedMap[uint32, uint32]()
		for op := range 50_000 {
			k := uint32(rng.IntN(3 * limit))
			if rng.IntN(3) == 0 {
				v, ok := u.get(k)
				i := find(k)
				if ok != (i >= 0) || ok && v != model[i].v {
					t.Fatalf("limit %d, op %d: get(%d) = %d, %v; model %v", limit, op, k, v, ok, model)
				}
				if ok {
					model[i].used = true
				}
			} else {
				v := rng.Uint32()
				ok := u.put(k, v, limit)
				want := true
				if i := find(k); i >= 0 {
					model[i].v = v
				} else {
					if len(model) >= limit {
						j := slices.IndexFunc(model, func(e entry) bool { return !e.used })
						if j < 0 {
							want = false
						} else {
							model = slices.Delete(model, j, j+1)
						}
					}
					if want {
						model = append(model, entry{k: k, v: v})
					}
				}
				if ok != want {
					t.Fatalf("limit %d, op %d: put(%d) = %v, want %v", limit, op, k, ok, want)
				}
			}
			unused := 0
			for _, e := range model {
				if !e.used {
					unused++
				}
				if got, ok := u.m[e.k]; !ok || got.v != e.v || got.used != e.used {
					t.Fatalf("limit %d, op %d: key %d holds %+v, %v; model %+v", limit, op, e.k, got, ok, e)
				}
			}
			if u.len() != len(model) || u.unused != unused || len(u.waiting) > limit {
				t.Fatalf("limit %d, op %d: %d entries (%d unused, %d waiting), model %d (%d unused)",
					limit, op, u.len(), u.unused, len(u.waiting), len(model), unused)
			}
		}
	}
}
