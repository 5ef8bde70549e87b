package flow

import (
	"math/rand/v2"
	"testing"
)

// TestKeyIndexModel checks keyIndex against a Go map under random
// inserts, lookups and deletes (small key space to force collisions).
func TestKeyIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x keyIndex
	x.init(16)
	model := map[Key]int32{}
	key := func() Key {
		var k Key
		k.SrcIP[0] = byte(rng.IntN(8))
		k.DstIP[15] = byte(rng.IntN(8))
		k.SrcPort = uint16(rng.IntN(64))
		k.Proto = 6
		return k
	}
	for i := range 200000 {
		k := key()
		switch rng.IntN(3) {
		case 0:
			x.put(&k, int32(i))
			model[k] = int32(i)
		case 1:
			x.del(&k)
			delete(model, k)
		}
		got, ok := x.get(&k)
		want, wok := model[k]
		if ok != wok || got != want {
			t.Fatalf("step %d: get = %d,%v; want %d,%v", i, got, ok, want, wok)
		}
		if x.n != len(model) {
			t.Fatalf("step %d: %d entries, want %d", i, x.n, len(model))
		}
	}
	for k, v := range model {
		if got, ok := x.get(&k); !ok || got != v {
			t.Fatalf("final: %v -> %d,%v want %d", k, got, ok, v)
		}
	}
}
