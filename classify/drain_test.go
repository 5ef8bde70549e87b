package classify

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/netmamba/netmamba/capture"
	"github.com/netmamba/netmamba/train"
)

// gateNet is a classifier whose Forward waits until gate is closed; it
// counts the flows it classified.
type gateNet struct {
	train.Classifier
	gate    chan struct{}
	entered chan struct{} // receives once per Forward call, when it starts
	flows   atomic.Int64
}

func (g *gateNet) NumClasses() int { return 2 }

func (g *gateNet) Forward(d *train.Data, idx []int, logits []float32) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	g.flows.Add(int64(len(idx)))
	clear(logits)
	return nil
}

// TestDrainShedsWhatTimeDoesNotAllow: at shutdown a table holds more open
// flows than the classifier can take before the drain deadline. The
// classifier is held until the deadline has passed, so exactly the flows
// of its first batch are classified; every other flow — those flushed into
// the full queue and those the flush could not queue — must be reported
// shed, and every flow must appear exactly once.
func TestDrainShedsWhatTimeDoesNotAllow(t *testing.T) {
	const flows, batch, queue = 300, 4, 8
	net := &gateNet{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, err := New([]train.Classifier{net}, Options{Classes: []string{"a", "b"}, MaxBatch: batch, QueueLen: queue, Early: 5})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[uint16]int{} // source port -> final results
	var shed, classified int
	sink := func(r *Result) {
		mu.Lock()
		defer mu.Unlock()
		if !r.Final {
			t.Errorf("non-final result %+v", r)
		}
		seen[r.Key.SrcPort+uint16(r.Key.SrcIP[3])<<8]++
		switch {
		case r.Shed && r.Label == LabelUnclassified:
			shed++
		case !r.Shed && r.Label != LabelUnclassified:
			classified++
		default:
			t.Errorf("result neither shed nor classified: %+v", r)
		}
	}
	in := p.NewIngest("drain", sink)
	for i := range flows { // one packet each: open, not yet classified (Early 5)
		in.Packet(capture.LinkRaw, udpFrame(i, 40), int64(i))
	}
	if got := p.Stats().LiveFlows; got != flows {
		t.Fatalf("%d live flows before shutdown, want %d", got, flows)
	}
	p.Drain(50e6) // 50 ms
	closed := make(chan struct{})
	go func() { in.Close(); close(closed) }()
	<-net.entered // the first batch is in the model…
	<-p.expired   // …when the deadline passes
	close(net.gate)
	<-closed
	p.Close()
	st := p.Stats()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != flows {
		t.Fatalf("%d distinct flows reported, want %d", len(seen), flows)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("flow %d reported %d times", k, n)
		}
	}
	got := int(net.flows.Load())
	if got < 1 || got > batch {
		t.Fatalf("model classified %d flows, want the first batch only (1..%d)", got, batch)
	}
	if classified != got || shed != flows-got {
		t.Fatalf("results: %d classified, %d shed; want %d and %d", classified, shed, got, flows-got)
	}
	if st.Shed != uint64(shed) || st.ShedAtShutdown != uint64(shed) || st.Classified != uint64(got) || st.Results != flows {
		t.Fatalf("stats %v: want %d shed at shutdown, %d classified, %d results", st, shed, got, flows)
	}
}

// TestDrainClassifiesWhenTimeAllows: with time to spare, shutdown
// classifies every open flow (none shed), as before the drain bound.
func TestDrainClassifiesWhenTimeAllows(t *testing.T) {
	const flows = 100
	net := &recordNet{classes: 2}
	p, err := New([]train.Classifier{net}, Options{Classes: []string{"a", "b"}, MaxBatch: 4, QueueLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	var results atomic.Int64
	in := p.NewIngest("drain", func(r *Result) {
		if r.Shed {
			t.Errorf("flow shed with time to spare: %+v", r)
		}
		results.Add(1)
	})
	for i := range flows {
		in.Packet(capture.LinkRaw, udpFrame(i, 40), int64(i))
	}
	p.Drain(1e12) // far beyond what 100 flows take
	in.Close()
	p.Close()
	if st := p.Stats(); results.Load() != flows || st.Classified != flows || st.Shed != 0 {
		t.Fatalf("%d results, stats %v: want %d classified, none shed", results.Load(), st, flows)
	}
}
