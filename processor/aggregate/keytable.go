package aggregate

import (
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// ckey is a family's compact key: the words of a Key the family uses, in
// order (keyTable.words), the rest unused.
type ckey [keyWords]uint64

// keyTable maps a family's compact keys to dense ids (0, 1, 2...) that index
// the owner's arrays. Ids of removed keys are reused, newest first.
//
// It is written by hand rather than being a Go map keyed by Key because a
// family uses only a few of Key's twelve words: hashing, comparing and
// storing only those makes a lookup about three times cheaper and a series
// smaller (BenchmarkProcess, BenchmarkSeriesMemory). Open addressing with
// linear probing, at most half full, backward-shift deletion (no
// tombstones). The hash is seeded per table at random, so keys an attacker
// chooses (spoofed addresses) cannot be made to collide on purpose.
type keyTable struct {
	words []uint8 // Key word indices in use
	// seed and k0 are random per table (the sketch copies its family's):
	// every operand of the hash's multiplications is masked by a secret,
	// so no key word can zero a product and erase the seed.
	seed, k0 uint64
	slots    []slot     // power-of-two length
	keys     [][]uint64 // key of id i: chunk i/keyChunk, at (i%keyChunk)*len(words); each chunk ends in shortKey-1 words of padding (findShort)
	next     int32      // ids handed out so far
	free     []int32
	n        int // keys present
	// shortMask has all bits set in the first min(len(words), shortKey)
	// words: findShort's comparison ignores the words past the key.
	shortMask [shortKey]uint64
}

// keyChunk is how many keys a chunk of keyTable.keys holds; chunks keep
// growth from copying and from leaving up to half the memory unused.
const keyChunk = 256

// stored returns the words of id's key.
func (t *keyTable) stored(id int32) []uint64 {
	w := len(t.words)
	o := int(uint32(id)%keyChunk) * w
	return t.keys[uint32(id)/keyChunk][o : o+w : o+w]
}

// slot is one table entry; id is the key's id+1, 0 when the slot is empty.
// hash is the low half of the key's hash (the home slot is hash&mask), so
// most mismatches are rejected without reading the key.
type slot struct {
	hash uint32
	id   int32
}

const hashMul1 = 0xe7037ed1a0b428db // one of wyhash's primes

// newKeyTable returns a table for keys made of the given words (at least
// one), with room for capacity keys before it grows.
func newKeyTable(words []uint8, capacity int) keyTable {
	n := 16
	for n < 2*capacity {
		n *= 2
	}
	t := keyTable{words: words, seed: rand.Uint64(), k0: rand.Uint64(), slots: make([]slot, n)}
	for i := range min(len(words), shortKey) {
		t.shortMask[i] = ^uint64(0)
	}
	return t
}

// shortKey is how many words findShort compares.
const shortKey = 5

// hash returns the hash of the compact key ck.
func (t *keyTable) hash(ck *ckey) uint64 {
	return t.hashFrom(t.seed, ck[:len(t.words)])
}

// hashFrom continues a hash h (t.seed at the start of a key) over words: the
// hash of a key is hashFrom(hashFrom(seed, key[:n]), key[n:]) for any n.
func (t *keyTable) hashFrom(h uint64, words []uint64) uint64 {
	for _, w := range words {
		h = t.mix(h, w)
	}
	return h
}

// mix continues a hash h over one word.
func (t *keyTable) mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(w^t.k0, h^hashMul1)
	return hi ^ lo
}

// compact gathers t's words of a full key.
func (t *keyTable) compact(k *Key) ckey {
	var ck ckey
	kw := (*[keyWords]uint64)(unsafe.Pointer(k))
	for i, w := range t.words {
		ck[i] = kw[w]
	}
	return ck
}

// key returns the full key of id (words not in use are zero).
func (t *keyTable) key(id int32) Key {
	var k Key
	kw := (*[keyWords]uint64)(unsafe.Pointer(&k))
	stored := t.stored(id)
	for i, wi := range t.words {
		kw[wi] = stored[i]
	}
	return k
}

func (t *keyTable) equal(id int32, ck *ckey) bool {
	stored := t.stored(id)
	for i := range stored {
		if stored[i] != ck[i] {
			return false
		}
	}
	return true
}

// find returns the id of ck (whose hash is h), or -1.
func (t *keyTable) find(ck *ckey, h uint64) int32 {
	h32 := uint32(h)
	m := uint32(len(t.slots) - 1)
	for i := h32 & m; ; i = (i + 1) & m {
		s := t.slots[i]
		if s.id == 0 {
			return -1
		}
		if s.hash == h32 && t.equal(s.id-1, ck) {
			return s.id - 1
		}
	}
}

// findShort is find for a key of at most five words (shortKey).
func (t *keyTable) findShort(ck *ckey, h uint64) int32 {
	h32 := uint32(h)
	m := uint32(len(t.slots) - 1)
	z := &t.shortMask
	for i := h32 & m; ; i = (i + 1) & m {
		s := t.slots[i]
		if s.id == 0 {
			return -1
		}
		if s.hash == h32 {
			id := uint32(s.id - 1)
			c := t.keys[id/keyChunk]
			o := int(id%keyChunk) * len(t.words)
			st := (*[shortKey]uint64)(c[o : o+shortKey])
			if (st[0]^ck[0])&z[0]|(st[1]^ck[1])&z[1]|(st[2]^ck[2])&z[2]|(st[3]^ck[3])&z[3]|(st[4]^ck[4])&z[4] == 0 {
				return int32(id)
			}
		}
	}
}

// insert adds ck, which must not be present, and returns its id.
func (t *keyTable) insert(ck *ckey, h uint64) int32 {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	var id int32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = t.next
		t.next++
		if int(id/keyChunk) == len(t.keys) {
			// shortKey-1 words of padding let findShort read
			// shortKey words from any key.
			t.keys = append(t.keys, make([]uint64, keyChunk*len(t.words)+shortKey-1))
		}
	}
	copy(t.stored(id), ck[:])
	t.place(slot{hash: uint32(h), id: id + 1})
	t.n++
	return id
}

func (t *keyTable) place(s slot) {
	m := uint32(len(t.slots) - 1)
	i := s.hash & m
	for t.slots[i].id != 0 {
		i = (i + 1) & m
	}
	t.slots[i] = s
}

func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]slot, 2*len(old))
	for _, s := range old {
		if s.id != 0 {
			t.place(s)
		}
	}
}

// remove deletes id's key and returns its hash; id becomes free for reuse.
func (t *keyTable) remove(id int32) uint64 {
	ck := t.compactOf(id)
	h := t.hash(&ck)
	m := uint32(len(t.slots) - 1)
	i := uint32(h) & m
	for t.slots[i].id != id+1 {
		i = (i + 1) & m
	}
	// Backward shift: pull later entries of the run into the hole unless
	// their home slot lies cyclically after the hole.
	for j := (i + 1) & m; t.slots[j].id != 0; j = (j + 1) & m {
		home := t.slots[j].hash & m
		if (j-home)&m >= (j-i)&m {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot{}
	t.free = append(t.free, id)
	t.n--
	return h
}

func (t *keyTable) compactOf(id int32) ckey {
	var ck ckey
	copy(ck[:], t.stored(id))
	return ck
}

// clear removes every key, keeping the memory.
func (t *keyTable) clear() {
	clear(t.slots)
	t.next = 0
	t.free = t.free[:0]
	t.n = 0
}

// ids returns how many ids have been handed out (present or free): the
// length the owner's arrays need.
func (t *keyTable) ids() int { return int(t.next) }
