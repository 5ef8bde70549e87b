package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmamba/netmamba/classify"
	"github.com/netmamba/netmamba/serve"
)

func newServeCmd() *cobra.Command {
	var (
		pf                 pipelineFlags
		addr, token, iface string
		redisAddr          string
		maxUpload          int64
		recent, workers    int
		uploadSlots        int
		promisc, ignoreOut bool
		statsEvery         time.Duration
		maxMemory          string
		drainTimeout       time.Duration
	)
	c := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] [--token T] [-i IFACE] [--redis ADDR]",
		Short: "Run the classifier as a service: HTTP API, dashboard, Prometheus metrics, optional live capture and Redis sink",
		Long: `serve runs the classify pipeline as a long-running service.

  POST /api/classify   body: pcap/pcapng, optionally gzip (at most --max-upload bytes)
                       -> JSON array, one object per flow (the fields of 'classify --format jsonl')
  GET  /api/flows      ?label=&src_ip=&limit= recent final results, newest first (ring of --recent)
  GET  /api/stats      counters and the dashboard's time series
  GET  /metrics        Prometheus metrics (netmamba_*)
  GET  /healthz        liveness
  GET  /               dashboard: live flow table, class distribution over time, throughput

It binds to 127.0.0.1:8080 by default; a non-loopback --addr requires --token, then sent
as "Authorization: Bearer TOKEN" (the dashboard takes it from its URL: /#token=TOKEN).
With -i IFACE it also classifies live traffic (AF_PACKET, --workers fanout; flows
shed under overload are reported with shed=true). As with 'classify -i', live memory is
held under --max-memory (default 1GiB; sets the Go memory limit and derives the
flow-table cap, printed at start; --max-flows overrides); the bound also holds
--upload-slots uploads (default 1; each its body, 8× that gzip-decompressed, and its flow
table) and the recent results: lower --max-upload to leave more to live flows. Every
thread that runs a model (live and upload classifier workers, with --threads > 1 each
worker's pool) runs at nice +10 so that the model never starves capture (the live CPU
figures count the live classifier as classifier, uploads as other). Uploads
beyond the slots wait up to 30 s for one, then get 503 with Retry-After. An upload's JSON
response is beyond the bound. At shutdown, uploads in progress get 5 s to finish, then
stop reading and answer 503 (the flows they read are still classified and sent
to /api/flows and Redis); live and upload flows are classified for at most
--drain-timeout (default 10s), and those left unclassified are reported shed. With --redis ADDR every final
result is also written to Redis: XADD netmamba:flows (fields json, label; stream capped
at about 100000 entries) and HSET netmamba:flow:SRC:SPORT-DST:DPORT/PROTO (label,
confidence, packets, bytes, first_seen_ms, last_seen_ms, classified_at_packets, shed,
json; expires after 1 h). Uploads are classified by their own classifier worker(s) and
wait for it rather than shed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := serve.CheckBind(addr, token); err != nil {
				return err
			}
			if err := checkDrainTimeout(drainTimeout); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			stderr := cmd.ErrOrStderr()
			if uploadSlots < 1 {
				return fmt.Errorf("serve: --upload-slots %d: want at least 1", uploadSlots)
			}
			cfg := serve.Config{Token: token, MaxUpload: maxUpload, RecentFlows: recent, UploadSlots: uploadSlots}.WithDefaults()
			isLive := iface != ""
			var workerCPU atomic.Int64
			if isLive || cmd.Flags().Changed(maxMemoryFlag) {
				// One bound for the process: the capture workers' rings and
				// tables, plus what uploads hold (serve.HeldBytes: each upload
				// slot's body and decompression, the recent-results ring) and
				// one flow table per upload slot. Without live capture those
				// tables are the only ones.
				tableWorkers, extra := uploadSlots, memoryExtra{Bytes: serve.HeldBytes(cfg, pf.topK),
					For: fmt.Sprintf("%d upload slot(s) (body + gzip decompression) and recent results", uploadSlots)}
				if isLive {
					tableWorkers, extra.Tables = workers, uploadSlots
				}
				if err := pf.setMaxMemory(maxMemory, tableWorkers, isLive, extra); err != nil {
					return fmt.Errorf("serve: %w", err)
				}
			}
			if isLive {
				// Neither uploads nor the live model may starve capture.
				pf.workerSetup = lowerClassifierPriority("serve", stderr)
			}
			upload, name, err := pf.build(cmd.Flags(), false, true, false)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			defer upload.Close()
			var livePipe *classify.Pipeline
			if isLive {
				if pf.bound != nil {
					// The live split also holds the upload pipeline's queue
					// and batches; its measured heap includes the upload
					// model. (The upload table's cap was derived before the
					// live model was loaded, so it may exceed the live cap
					// by the live model's share: the GC headroom covers it.)
					pf.memExtra.Bytes += pf.bound.Queue + pf.bound.Batch
				}
				pf.emitEarly = true
				pf.workerCPU = &workerCPU // the live classifier's, in runLive's CPU figures
				if livePipe, _, err = pf.build(cmd.Flags(), true, false, false); err != nil {
					return fmt.Errorf("serve: %w", err)
				}
				defer livePipe.Close()
			}
			if pf.bound != nil {
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(pf.bound.HeapLimit))
				if !isLive { // live: runLive prints it when the capture starts
					fmt.Fprintf(stderr, "serve: %v\n", *pf.bound)
				}
			}
			srv := serve.New(upload, livePipe, cfg)
			defer srv.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if redisAddr != "" {
				rs, err := serve.NewRedisSink(ctx, redisAddr)
				if err != nil {
					return err
				}
				defer func() {
					rs.Close()
					w, d, f := rs.Counts()
					fmt.Fprintf(stderr, "serve: redis: %d results written, %d dropped (queue full), %d failed\n", w, d, f)
				}()
				srv.AddSink(rs.Add)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			fmt.Fprintf(stderr, "serve: model %s, listening on http://%s/, uploads at most %s (gzip: %s decompressed), %d flows per upload table\n",
				name, ln.Addr(), formatBytes(cfg.MaxUpload), formatBytes(serve.GzipExpansion*cfg.MaxUpload), upload.Options().MaxFlows)
			return serveLoop(ctx, ln, srv, livePipe, liveOptions{iface: iface, workers: workers, promisc: promisc,
				ignoreOutgoing: ignoreOutgoingOption(cmd.Flags(), ignoreOut), statsEvery: statsEvery, bound: pf.bound, drainTimeout: drainTimeout, workerCPU: &workerCPU}, stderr)
		},
	}
	f := c.Flags()
	pf.register(f)
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&token, "token", "", "bearer token required by the API (mandatory on a non-loopback address)")
	f.Int64Var(&maxUpload, "max-upload", 64<<20, "largest POST /api/classify body in bytes (gzip: 8× that decompressed)")
	f.IntVar(&recent, "recent", 10000, "recent results kept for /api/flows")
	f.IntVar(&uploadSlots, "upload-slots", 1, "uploads read and classified at once (each counts in --max-memory); others wait up to 30 s, then get 503")
	f.StringVarP(&iface, "interface", "i", "", "also classify live traffic on this interface")
	f.IntVar(&workers, "workers", 1, "live: fanout capture workers")
	f.BoolVar(&promisc, "promisc", false, "live: promiscuous mode")
	f.BoolVar(&ignoreOut, ignoreOutgoingFlag, false, ignoreOutgoingHelp)
	f.DurationVar(&statsEvery, "stats-interval", 10*time.Second, "live: statistics to stderr this often (0: never)")
	f.StringVar(&redisAddr, "redis", "", "also write results to Redis at this host:port")
	f.StringVar(&maxMemory, maxMemoryFlag, maxMemoryDefault, "live (uploads only: only if set): bound the process's memory (e.g. 512MiB, 2GiB; 0 = none): sets the Go memory limit and derives the flow-table cap per worker from it, holding --upload-slots uploads of --max-upload (each 8× that gzip-decompressed, with its flow table); an upload's results and --max-flows (which overrides) go beyond")
	f.DurationVar(&drainTimeout, drainTimeoutFlag, drainTimeoutDefault, drainTimeoutHelp)
	return c
}

// serveLoop serves srv on ln and, with a live pipeline, captures live
// (runLive with o) until ctx is done or either fails; then it stops the
// HTTP server (in-flight uploads get 5 s, then are cut short: see
// serve.Server.StopUploads) and waits for the live capture
// to end: its open flows are classified for at most o.drainTimeout, the
// rest reported shed, every one reaching srv's sinks before it returns.
func serveLoop(ctx context.Context, ln net.Listener, srv *serve.Server, livePipe *classify.Pipeline, o liveOptions, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(ln) }()
	var liveErr chan error
	if livePipe != nil {
		liveErr = make(chan error, 1)
		go func() { liveErr <- runLive(ctx, livePipe, srv.Sink, o, stderr) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
	case err = <-liveErr:
		liveErr = nil
	}
	cancel() // ends the live capture (its drain starts) if the HTTP server failed
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	// Uploads still running after the grace period stop reading; what they
	// read is classified within the drain timeout (then shed), and every
	// handler has returned before the pipelines close.
	srv.StopUploads(o.drainTimeout)
	if liveErr != nil {
		if lerr := <-liveErr; err == nil || errors.Is(err, http.ErrServerClosed) {
			err = lerr
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
