package decode

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestUsedMapMatchesModel runs random gets, stores (with and without
// weights), removals and shrinks against a plain model (entries in the order
// stored, each with its weight and mark; making room forgets the first
// unmarked entries, never the key being stored, and only if that makes
// enough) and checks every answer, every entry, the counts and sums, and
// that the waiting list never outgrows the limit.
func TestUsedMapMatchesModel(t *testing.T) {
	for _, tc := range []struct {
		limit, budget, maxWeight int // maxWeight 0: put, no weights
	}{
		{1, 0, 0}, {2, 0, 0}, {5, 0, 0}, {64, 0, 0},
		{1, 10, 10}, {4, 10, 6}, {8, 30, 12}, {64, 200, 20},
	} {
		rng := rand.New(rand.NewPCG(uint64(tc.limit), uint64(tc.budget)))
		type entry struct {
			k, v uint32
			w    int
			used bool
		}
		var model []entry
		find := func(k uint32) int {
			return slices.IndexFunc(model, func(e entry) bool { return e.k == k })
		}
		// forgetFirstUnused deletes the first unmarked entry other than
		// keep's from the model.
		forgetFirstUnused := func(keep uint32) {
			j := slices.IndexFunc(model, func(e entry) bool { return !e.used && e.k != keep })
			model = slices.Delete(model, j, j+1)
		}
		// answer checks what get or remove returned for k against the
		// model, and returns k's place in it (-1 if absent).
		answer := func(op int, name string, k, v uint32, ok bool) int {
			i := find(k)
			if ok != (i >= 0) || ok && v != model[i].v {
				t.Fatalf("%+v, op %d: %s(%d) = %d, %v; model %v", tc, op, name, k, v, ok, model)
			}
			return i
		}
		u := newUsedMap[uint32, uint32]()
		for op := range 50_000 {
			k := uint32(rng.IntN(3 * tc.limit))
			switch r := rng.IntN(16); {
			case r < 5:
				v, ok := u.get(k)
				if i := answer(op, "get", k, v, ok); ok {
					model[i].used = true
				}
			case r < 6 && rng.IntN(4) == 0:
				limit, budget := rng.IntN(tc.limit+1), rng.IntN(tc.budget+1)
				want := true
				for {
					total := 0
					for _, e := range model {
						total += e.w
					}
					if len(model) <= limit && total <= budget {
						break
					}
					j := slices.IndexFunc(model, func(e entry) bool { return !e.used })
					if j < 0 {
						want = false
						break
					}
					model = slices.Delete(model, j, j+1)
				}
				if got := u.shrink(limit, budget); got != want {
					t.Fatalf("%+v, op %d: shrink(%d, %d) = %v, want %v", tc, op, limit, budget, got, want)
				}
			case r < 6:
				v, ok := u.remove(k)
				if i := answer(op, "remove", k, v, ok); ok {
					model = slices.Delete(model, i, i+1)
				}
			default:
				v, w := rng.Uint32(), 0
				if tc.maxWeight > 0 {
					w = rng.IntN(tc.maxWeight + 1)
				}
				i := find(k)
				total, old, freeN, freeW := 0, 0, 0, 0
				for _, e := range model {
					total += e.w
					switch {
					case e.k == k:
						old = e.w
					case !e.used:
						freeN++
						freeW += e.w
					}
				}
				want := roomFits
				switch {
				case i < 0 && len(model) >= tc.limit && freeN == 0:
					want = roomLimit
				case total-old+w-tc.budget > freeW:
					want = roomBudget
				}
				var got roomFor
				if tc.maxWeight == 0 {
					if !u.put(k, v, tc.limit) {
						got = roomLimit // put does not say which
					}
				} else if got = u.room(k, w, tc.limit, tc.budget); got == roomFits {
					u.store(k, v, w, tc.limit, tc.budget)
				}
				if got != want {
					t.Fatalf("%+v, op %d: storing %d (weight %d) = %v, want %v; model %v", tc, op, k, w, got, want, model)
				}
				if want != roomFits {
					break
				}
				if i < 0 && len(model) >= tc.limit {
					forgetFirstUnused(k)
				}
				for {
					total := w // the weight once k is stored
					for _, e := range model {
						if e.k != k {
							total += e.w
						}
					}
					if total <= tc.budget || tc.maxWeight == 0 {
						break
					}
					forgetFirstUnused(k)
				}
				if i = find(k); i >= 0 {
					model[i].v, model[i].w = v, w
				} else {
					model = append(model, entry{k: k, v: v, w: w})
				}
			}
			// The waiting list holds the unused keys in the model's order
			// (and, skipped, keys used since they were stored), each once.
			var waitingUnused, modelUnused []uint32
			seen := map[uint32]bool{}
			for _, k := range u.waiting {
				if e, ok := u.m[k]; !ok || seen[k] {
					t.Fatalf("%+v, op %d: %d waits twice or is not stored: %v", tc, op, k, u.waiting)
				} else if !e.used {
					waitingUnused = append(waitingUnused, k)
				}
				seen[k] = true
			}
			for _, e := range model {
				if !e.used {
					modelUnused = append(modelUnused, e.k)
				}
			}
			if !slices.Equal(waitingUnused, modelUnused) {
				t.Fatalf("%+v, op %d: unused keys wait as %v, model %v", tc, op, waitingUnused, modelUnused)
			}
			unused, weight, unusedWeight := 0, 0, 0
			for _, e := range model {
				weight += e.w
				if !e.used {
					unused++
					unusedWeight += e.w
				}
				if got, ok := u.m[e.k]; !ok || got.v != e.v || got.w != e.w || got.used != e.used {
					t.Fatalf("%+v, op %d: key %d holds %+v, %v; model %+v", tc, op, e.k, got, ok, e)
				}
			}
			if u.len() != len(model) || u.unused != unused || u.weight != weight || u.unusedWeight != unusedWeight || len(u.waiting) > tc.limit {
				t.Fatalf("%+v, op %d: %d entries (%d unused, weight %d, unused %d, %d waiting), model %d (%d unused, weight %d, unused %d)",
					tc, op, u.len(), u.unused, u.weight, u.unusedWeight, len(u.waiting), len(model), unused, weight, unusedWeight)
			}
		}
	}
}
