package samplegen

import (
	"encoding/binary"
	"math/rand/v2"
)

// detRand is a deterministic random source for one flow. It serves both
// math/rand-style draws (for timing, ports, IDs) and an io.Reader for
// crypto/tls (tls.Config.Rand) and key generation.
//
// crypto's internal randutil.MaybeReadByte reads one byte from a custom
// reader with probability 1/2 to stop callers from relying on determinism.
// Read therefore answers one-byte reads without advancing the stream, which
// keeps the output byte-identical for a seed.
type detRand struct {
	chacha *rand.ChaCha8
	r      *rand.Rand
}

// newDetRand derives the source for stream id of a run with the given seed.
func newDetRand(seed uint64, stream uint64) *detRand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], stream)
	binary.LittleEndian.PutUint64(key[16:], 0x6e65746d616d6261) // "netmamba"
	binary.LittleEndian.PutUint64(key[24:], 0x73616d706c656765) // "samplege"
	c := rand.NewChaCha8(key)
	return &detRand{chacha: c, r: rand.New(c)}
}

// Read fills p with deterministic bytes; see the type comment for the
// one-byte case.
func (d *detRand) Read(p []byte) (int, error) {
	if len(p) == 1 {
		p[0] = 0x5a
		return 1, nil
	}
	return d.chacha.Read(p)
}

// intn returns a uniform int in [0, n).
func (d *detRand) intn(n int) int { return d.r.IntN(n) }

// between returns a uniform int64 in [lo, hi].
func (d *detRand) between(lo, hi int64) int64 { return lo + d.r.Int64N(hi-lo+1) }

// bytes returns n deterministic random bytes.
func (d *detRand) bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = d.chacha.Read(b)
	return b
}
