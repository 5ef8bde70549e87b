package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
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
		promisc, ignoreOut bool
		statsEvery         time.Duration
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
shed under overload are reported with shed=true). With --redis ADDR every final
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
			stderr := cmd.ErrOrStderr()
			upload, name, err := pf.build(cmd.Flags(), false, true, false)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			defer upload.Close()
			var livePipe *classify.Pipeline
			if iface != "" {
				pf.emitEarly = true
				if livePipe, _, err = pf.build(cmd.Flags(), true, false, false); err != nil {
					return fmt.Errorf("serve: %w", err)
				}
				defer livePipe.Close()
			}
			srv := serve.New(upload, livePipe, serve.Config{Token: token, MaxUpload: maxUpload, RecentFlows: recent})
			defer srv.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 2)
			go func() { errc <- hs.Serve(ln) }()
			fmt.Fprintf(stderr, "serve: model %s, listening on http://%s/\n", name, ln.Addr())
			if livePipe != nil {
				go func() {
					errc <- runLive(ctx, livePipe, srv.Sink, liveOptions{iface: iface, workers: workers, promisc: promisc,
						ignoreOutgoing: ignoreOutgoingOption(cmd.Flags(), ignoreOut), statsEvery: statsEvery}, stderr)
				}()
			}
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		},
	}
	f := c.Flags()
	pf.register(f)
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&token, "token", "", "bearer token required by the API (mandatory on a non-loopback address)")
	f.Int64Var(&maxUpload, "max-upload", 64<<20, "largest POST /api/classify body in bytes (gzip: 8× that decompressed)")
	f.IntVar(&recent, "recent", 10000, "recent results kept for /api/flows")
	f.StringVarP(&iface, "interface", "i", "", "also classify live traffic on this interface")
	f.IntVar(&workers, "workers", 1, "live: fanout capture workers")
	f.BoolVar(&promisc, "promisc", false, "live: promiscuous mode")
	f.BoolVar(&ignoreOut, ignoreOutgoingFlag, false, ignoreOutgoingHelp)
	f.DurationVar(&statsEvery, "stats-interval", 10*time.Second, "live: statistics to stderr this often (0: never)")
	f.StringVar(&redisAddr, "redis", "", "also write results to Redis at this host:port")
	return c
}
