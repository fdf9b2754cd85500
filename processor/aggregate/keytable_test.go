package aggregate

import (
	"math/rand/v2"
	"testing"
)

// TestKeyTableMatchesMap runs random inserts, lookups and removals against a
// Go map as the reference, with few words and small values so that keys
// collide in their home slots, runs wrap around the table's end, and
// backward-shift deletion is exercised on every path.
func TestKeyTableMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		words  []uint8
		values int // distinct values per word
		ops    int
	}{
		{"one word", []uint8{uint8(otherWord)}, 5000, 200_000},
		{"three words", []uint8{0, 1, uint8(otherWord)}, 40, 200_000},
		{"five words", []uint8{0, 1, uint8(otherWord), 2, 3}, 8, 200_000},
		{"all words", []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 9))
			tab := newKeyTable(tc.words, 1)
			ref := map[ckey]int32{}
			random := func() ckey {
				var ck ckey
				for i := range tc.words {
					ck[i] = uint64(rng.IntN(tc.values)) << (8 * uint(i%8))
				}
				return ck
			}
			for op := 0; op < tc.ops; op++ {
				ck := random()
				h := tab.hash(&ck)
				got := tab.find(&ck, h)
				want, ok := ref[ck]
				if !ok {
					want = -1
				}
				if got != want {
					t.Fatalf("op %d: find = %d, want %d", op, got, want)
				}
				if len(tc.words) <= shortKey {
					if short := tab.findShort(&ck, h); short != want {
						t.Fatalf("op %d: findShort = %d, want %d", op, short, want)
					}
				}
				switch {
				case got < 0 && rng.IntN(3) > 0:
					id := tab.insert(&ck, h)
					ref[ck] = id
					if tab.compactOf(id) != ck {
						t.Fatalf("op %d: id %d holds another key", op, id)
					}
				case got >= 0 && rng.IntN(2) == 0:
					tab.remove(got)
					delete(ref, ck)
				}
				if tab.n != len(ref) {
					t.Fatalf("op %d: %d keys, want %d", op, tab.n, len(ref))
				}
			}
			// Every remaining key is found under its id, ids are distinct
			// and below ids(), and the table is at most half full.
			seen := map[int32]bool{}
			for ck, id := range ref {
				h := tab.hash(&ck)
				if got := tab.find(&ck, h); got != id || seen[id] || int(id) >= tab.ids() {
					t.Fatalf("key %v: id %d, want %d (seen %v)", ck, got, id, seen[id])
				}
				seen[id] = true
			}
			if 2*tab.n > len(tab.slots) {
				t.Fatalf("%d keys in %d slots", tab.n, len(tab.slots))
			}
			tab.clear()
			for ck := range ref {
				if tab.find(&ck, tab.hash(&ck)) >= 0 {
					t.Fatal("clear left a key")
				}
			}
		})
	}
}

// TestFindComparesEveryWord: a key that differs from a stored one in any
// single word is not found under the stored key's hash, by find and by
// findShort, for keys of every length and ids in every position of a
// chunk (findShort reads past the last key of a chunk into its padding).
// Random keys almost never share a hash, so the other tests would miss a
// comparison that skipped a word.
func TestFindComparesEveryWord(t *testing.T) {
	for n := 1; n <= keyWords; n++ {
		words := make([]uint8, n)
		for i := range words {
			words[i] = uint8(i)
		}
		tab := newKeyTable(words, 1)
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		for id := int32(0); id < keyChunk+3; id++ {
			var ck ckey
			for i := range n {
				ck[i] = rng.Uint64()
			}
			h := tab.hash(&ck)
			if got := tab.insert(&ck, h); got != id {
				t.Fatalf("%d words: insert gave id %d, want %d", n, got, id)
			}
			for j := range n {
				other := ck
				other[j] ^= 1 << (id % 64)
				if got := tab.find(&other, h); got != -1 {
					t.Fatalf("%d words, id %d: a key differing in word %d is found as %d", n, id, j, got)
				}
				if n <= shortKey {
					if got := tab.findShort(&other, h); got != -1 {
						t.Fatalf("%d words, id %d: findShort finds a key differing in word %d as %d", n, id, j, got)
					}
				}
			}
			if got := tab.find(&ck, h); got != id {
				t.Fatalf("%d words: id %d is found as %d", n, id, got)
			}
			if n <= shortKey {
				if got := tab.findShort(&ck, h); got != id {
					t.Fatalf("%d words: findShort finds id %d as %d", n, id, got)
				}
			}
		}
	}
}

// TestKeyTableSeeds shows two tables hash the same key differently (the
// seed is random), so colliding keys cannot be chosen in advance.
func TestKeyTableSeeds(t *testing.T) {
	ck := ckey{1, 2, 3}
	a, b := newKeyTable([]uint8{0, 1, 2}, 1), newKeyTable([]uint8{0, 1, 2}, 1)
	if a.seed == b.seed || a.k0 == b.k0 || a.hash(&ck) == b.hash(&ck) {
		t.Fatalf("seeds %x %x give the same hash", a.seed, b.seed)
	}
}

func TestJoinSplitLabels(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"192.0.2.1"}, []string{"192.0.2.1"}},
		{[]string{"192.0.2.1", "10.0.0.1", "tcp"}, []string{"192.0.2.1", "10.0.0.1", "tcp"}},
		{[]string{"", "x", ""}, []string{"", "x", ""}},
		{[]string{"bad\xffname", "ok"}, []string{"bad\uFFFDname", "ok"}},
		{[]string{"\xc3", "é"}, []string{"\uFFFD", "é"}},
	} {
		got := make([]string, len(tc.in))
		splitLabels(got, joinLabels(append([]string(nil), tc.in...)))
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
				break
			}
		}
	}
}

// TestKeyTableNoSeedFreeCollisions: a key word that would zero a
// multiplication with a public constant must not erase the seed: keys that
// share such a word but differ before it hash differently. (With the
// constant, IPv6 sources ending in these bytes all had one hash whatever the
// seed, and a family's lookups became linear scans.)
func TestKeyTableNoSeedFreeCollisions(t *testing.T) {
	const evil = 0xa0761d6478bd642f // wyhash's first prime
	for range 4 {
		tab := newKeyTable([]uint8{2, 3, uint8(otherWord)}, 1)
		seen := map[uint64]bool{}
		for i := range 64 {
			ck := ckey{uint64(i) << 20, evil, 0}
			seen[tab.hash(&ck)] = true
		}
		if len(seen) != 64 {
			t.Fatalf("64 keys sharing the word %#x have %d distinct hashes", uint64(evil), len(seen))
		}
	}
}
