package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/repr"
)

// byteUnits are the suffixes parseBytes accepts (case-insensitive): SI
// (KB, MB, …: powers of 1000) and binary (KiB, Ki, and bare K, M, G, T:
// powers of 1024).
var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// parseBytes parses a byte count such as 512MiB, 2GiB, 1.5G or 1000000.
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || t == "" {
		return 0, fmt.Errorf("%q: want a byte count such as 512MiB, 2GiB or 1000000", s)
	}
	b := v * mult
	if b >= 1<<62 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(b), nil
}

// formatBytes prints n in MiB or GiB.
func formatBytes(n int64) string {
	if n >= 1<<30 {
		s := strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64)
		return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + " GiB"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// memoryBound is how a --max-memory bound is split. Everything is in
// bytes of resident memory of the whole process.
type memoryBound struct {
	Limit     int64 // --max-memory
	Rings     int64 // capture rings (mmap, outside the Go heap)
	Binary    int64 // the executable's size: its text and the embedded model may be resident
	HeapLimit int64 // Limit - Rings - Binary: runtime/debug.SetMemoryLimit
	Fixed     int64 // measured heap with the model(s) loaded and run once
	Queue     int64 // classifier queue: queued flows keep their representation
	Buffers   int64 // classifier batch buffers and runtime overhead
	// FlowBudget is what the flow tables may use: half of what is left
	// (the other half is the GC's headroom: a heap held at its limit
	// would make the GC run continuously).
	FlowBudget int64
	Workers    int // capture workers (one flow table each)
	// MaxFlows is the derived cap per flow table (FlowBudget / Workers /
	// classify.FlowBytes).
	MaxFlows int
}

// runtimeOverhead is the heap limit share kept for the Go runtime's own
// memory (stacks, GC metadata, spans) and output buffers, plus a constant.
const (
	runtimeOverheadFrac  = 0.05
	runtimeOverheadConst = 16 << 20
	minFlowsPerTable     = 1024
)

// deriveMemoryBound splits limit among the capture rings, the executable,
// the measured fixed heap (model), the queue and the flow tables, and
// returns the flow-table cap per worker.
func deriveMemoryBound(limit int64, workers int, ringBytes, binary, fixedHeap int64, queueLen, classifiers, batch int) (memoryBound, error) {
	workers = max(workers, 1)
	b := memoryBound{Limit: limit, Workers: workers, Rings: int64(workers) * ringBytes, Binary: binary, Fixed: fixedHeap}
	b.HeapLimit = limit - b.Rings - b.Binary
	b.Queue = int64(queueLen) * classify.FlowBytes
	b.Buffers = int64(classifiers*batch)*(repr.ViewBytes+4096) + int64(float64(b.HeapLimit)*runtimeOverheadFrac) + runtimeOverheadConst
	b.FlowBudget = (b.HeapLimit - b.Fixed - b.Queue - b.Buffers) / 2
	b.MaxFlows = int(b.FlowBudget / int64(workers) / classify.FlowBytes)
	if b.HeapLimit <= 0 || b.MaxFlows < minFlowsPerTable {
		need := b.Rings + b.Binary + int64(float64(b.Fixed+b.Queue+b.Buffers+2*int64(workers*minFlowsPerTable)*classify.FlowBytes)/(1-runtimeOverheadFrac))
		return b, fmt.Errorf("--max-memory %s is too small: capture rings %s, executable %s, model %s, queue %s and buffers leave room for fewer than %d flows per capture worker; give at least %s",
			formatBytes(limit), formatBytes(b.Rings), formatBytes(b.Binary), formatBytes(b.Fixed), formatBytes(b.Queue), minFlowsPerTable, formatBytes(need))
	}
	return b, nil
}

// String is the bound's start-up description.
func (b memoryBound) String() string {
	return fmt.Sprintf("memory bound %s (%d bytes, --max-memory; Go heap limit %s): capture rings %s, executable %s, model and buffers %s (measured), classifier queue %s, flow tables %d × %d flows (%d B per flow, half the rest: the GC's headroom)",
		formatBytes(b.Limit), b.Limit, formatBytes(b.HeapLimit), formatBytes(b.Rings), formatBytes(b.Binary), formatBytes(b.Fixed+b.Buffers), formatBytes(b.Queue),
		b.Workers, b.MaxFlows, classify.FlowBytes)
}

// executableSize is the size of the running executable (0 if unknown).
func executableSize() int64 {
	p, err := os.Executable()
	if err != nil {
		return 0
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
