package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/live"
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
	Batch     int64 // classifier batch buffers (part of Buffers)
	Buffers   int64 // classifier batch buffers and runtime overhead
	// Reserved is heap held outside the pipeline (memoryExtra.Bytes),
	// ReservedFor what it is.
	Reserved    int64
	ReservedFor string
	// FlowBudget is what the flow tables may use: half of what is left
	// (the other half is the GC's headroom: a heap held at its limit
	// would make the GC run continuously).
	FlowBudget int64
	Workers    int // capture workers (one flow table and one ring each)
	Tables     int // flow tables: Workers plus memoryExtra.Tables
	// MaxFlows is the derived cap per flow table (FlowBudget / Tables /
	// classify.FlowBytes).
	MaxFlows int
}

// memoryExtra is what a bound must hold besides one pipeline's capture
// workers: serve's uploads. The zero value is nothing.
type memoryExtra struct {
	Tables int    // flow tables besides the capture workers' (serve: an upload's)
	Bytes  int64  // heap held outside the pipeline (serve: an upload's body, the recent-results ring)
	For    string // what Bytes is, for the start-up line
}

// runtimeOverhead is the heap limit share kept for the Go runtime's own
// memory (stacks, GC metadata, spans) and output buffers, plus a constant.
const (
	runtimeOverheadFrac  = 0.05
	runtimeOverheadConst = 16 << 20
	minFlowsPerTable     = 1024
)

// deriveMemoryBound splits limit among the capture rings, the executable,
// the measured fixed heap (model), extra.Bytes, the queue and the flow
// tables (one per capture worker plus extra.Tables), and returns the cap
// per flow table.
func deriveMemoryBound(limit int64, workers int, ringBytes, binary, fixedHeap int64, queueLen, classifiers, batch int, extra memoryExtra) (memoryBound, error) {
	workers = max(workers, 1)
	tables := workers + max(extra.Tables, 0)
	b := memoryBound{Limit: limit, Workers: workers, Tables: tables, Rings: int64(workers) * ringBytes, Binary: binary, Fixed: fixedHeap,
		Reserved: extra.Bytes, ReservedFor: extra.For}
	b.HeapLimit = limit - b.Rings - b.Binary
	b.Queue = int64(queueLen) * classify.FlowBytes
	b.Batch = int64(classifiers*batch) * (repr.ViewBytes + 4096)
	b.Buffers = b.Batch + int64(float64(b.HeapLimit)*runtimeOverheadFrac) + runtimeOverheadConst
	b.FlowBudget = (b.HeapLimit - b.Fixed - b.Reserved - b.Queue - b.Buffers) / 2
	b.MaxFlows = int(b.FlowBudget / int64(tables) / classify.FlowBytes)
	if b.HeapLimit <= 0 || b.MaxFlows < minFlowsPerTable {
		need := b.Rings + b.Binary + int64(float64(b.Fixed+b.Reserved+b.Queue+b.Buffers+2*int64(tables*minFlowsPerTable)*classify.FlowBytes)/(1-runtimeOverheadFrac))
		reserved := ""
		if b.Reserved > 0 {
			reserved = fmt.Sprintf(", %s %s", b.ReservedFor, formatBytes(b.Reserved))
		}
		return b, fmt.Errorf("--max-memory %s is too small: capture rings %s, executable %s, model %s%s, queue %s and buffers leave room for fewer than %d flows per flow table; give at least %s",
			formatBytes(limit), formatBytes(b.Rings), formatBytes(b.Binary), formatBytes(b.Fixed), reserved, formatBytes(b.Queue), minFlowsPerTable, formatBytes(need))
	}
	return b, nil
}

// String is the bound's start-up description.
func (b memoryBound) String() string {
	reserved := ""
	if b.Reserved > 0 {
		reserved = fmt.Sprintf(", %s %s", b.ReservedFor, formatBytes(b.Reserved))
	}
	return fmt.Sprintf("memory bound %s (%d bytes, --max-memory; Go heap limit %s): capture rings %s, executable %s, model and buffers %s (measured)%s, classifier queue %s, flow tables %d × %d flows (%d B per flow, half the rest: the GC's headroom)",
		formatBytes(b.Limit), b.Limit, formatBytes(b.HeapLimit), formatBytes(b.Rings), formatBytes(b.Binary), formatBytes(b.Fixed+b.Buffers), reserved, formatBytes(b.Queue),
		b.Tables, b.MaxFlows, classify.FlowBytes)
}

// setMaxMemory applies a --max-memory value (spec, e.g. "1GiB"; "0" = no
// bound) to pf for a process with workers capture workers (each with a
// live ring when isLive) and extra: the next build derives the flow-table
// cap from it. Shared by classify and serve.
func (pf *pipelineFlags) setMaxMemory(spec string, workers int, isLive bool, extra memoryExtra) error {
	mm, err := parseBytes(spec)
	if err != nil {
		return fmt.Errorf("--max-memory %w", err)
	}
	pf.maxMemory = mm
	pf.memWorkers = max(workers, 1)
	pf.memRingBytes = 0
	if isLive {
		pf.memRingBytes = int64(liveRingMiB(live.Config{})) << 20
	}
	pf.memExtra = extra
	return nil
}

// checkDrainTimeout validates --drain-timeout.
func checkDrainTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--drain-timeout %v: must be >= 0 (0 = wait for every flow)", d)
	}
	return nil
}

// Flag names and help shared by classify and serve.
const (
	maxMemoryFlag    = "max-memory"
	maxMemoryDefault = "1GiB"
	drainTimeoutFlag = "drain-timeout"
	drainTimeoutHelp = "live: at shutdown, classify the flows still open for at most this long, then report the rest shed (0 = wait for every flow)"
	// drainTimeoutDefault is --drain-timeout's default.
	drainTimeoutDefault = 10 * time.Second
)

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
