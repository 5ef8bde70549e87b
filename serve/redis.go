package serve

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/dataset"
)

// RedisSink writes final results to Redis without blocking the pipeline:
//
//   - XADD Stream MAXLEN ~ MaxLen * json <result JSON> label <label>
//     (one stream entry per flow, oldest trimmed);
//   - HSET FlowPrefix<src_ip>:<src_port>-<dst_ip>:<dst_port>/<protocol>
//     label, confidence, packets, bytes, first_seen_ms, last_seen_ms,
//     classified_at_packets, shed, json — the latest result of that flow,
//     expiring after TTL.
//
// Results wait in a bounded queue; when Redis is slow or down they are
// dropped and counted (Dropped), never blocking classification.
type RedisSink struct {
	client     *redis.Client
	Stream     string        // stream key (default "netmamba:flows")
	FlowPrefix string        // hash key prefix (default "netmamba:flow:")
	MaxLen     int64         // approximate stream cap (default 100000)
	TTL        time.Duration // hash expiry (default 1 h)
	meta       chan redisFlow
	wg         sync.WaitGroup
	written    atomic.Uint64
	dropped    atomic.Uint64
	failed     atomic.Uint64
	lastErr    atomic.Value
}

type redisFlow struct {
	key    string
	fields []any
	json   []byte
	label  string
}

// NewRedisSink connects to addr (host:port), checks it with PING and starts
// the writer.
func NewRedisSink(ctx context.Context, addr string) (*RedisSink, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("serve: redis %s: %w", addr, err)
	}
	s := &RedisSink{client: c, Stream: "netmamba:flows", FlowPrefix: "netmamba:flow:", MaxLen: 100000, TTL: time.Hour,
		meta: make(chan redisFlow, 4096)}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Add queues a final result (non-final ones are ignored); it never blocks.
func (s *RedisSink) Add(r *classify.Result) {
	if !r.Final {
		return
	}
	src, dst := dataset.KeyAddrs(&r.Key)
	f := redisFlow{
		key:   fmt.Sprintf("%s%s:%d-%s:%d/%d", s.FlowPrefix, src, r.Key.SrcPort, dst, r.Key.DstPort, r.Key.Proto),
		json:  r.AppendJSON(nil),
		label: r.Label,
	}
	firstMs, lastMs, _ := dataset.FlowMillis(&r.Stats)
	f.fields = []any{"label", r.Label, "confidence", strconv.FormatFloat(r.Confidence, 'g', 6, 64),
		"packets", r.Stats.Packets, "bytes", r.Stats.Bytes,
		"first_seen_ms", firstMs, "last_seen_ms", lastMs,
		"classified_at_packets", r.ClassifiedAtPackets, "shed", strconv.FormatBool(r.Shed), "json", string(f.json)}
	select {
	case s.meta <- f:
	default:
		s.dropped.Add(1)
	}
}

func (s *RedisSink) run() {
	defer s.wg.Done()
	ctx := context.Background()
	batch := make([]redisFlow, 0, 256)
	for f := range s.meta {
		batch = append(batch[:0], f)
	fill:
		for len(batch) < cap(batch) {
			select {
			case g, ok := <-s.meta:
				if !ok {
					break fill
				}
				batch = append(batch, g)
			default:
				break fill
			}
		}
		pipe := s.client.Pipeline()
		for _, f := range batch {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.Stream, MaxLen: s.MaxLen, Approx: true,
				Values: []any{"json", string(f.json), "label", f.label}})
			pipe.HSet(ctx, f.key, f.fields...)
			pipe.Expire(ctx, f.key, s.TTL)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			s.failed.Add(uint64(len(batch)))
			s.lastErr.Store(err.Error())
		} else {
			s.written.Add(uint64(len(batch)))
		}
	}
}

// Counts returns results written, dropped (queue full) and failed (Redis errors).
func (s *RedisSink) Counts() (written, dropped, failed uint64) {
	return s.written.Load(), s.dropped.Load(), s.failed.Load()
}

// Close writes the queued results and closes the connection.
func (s *RedisSink) Close() error {
	close(s.meta)
	s.wg.Wait()
	return s.client.Close()
}
