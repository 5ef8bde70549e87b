package samplegen

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// advance moves a side's clock forward by d (user think time).
func (p *pipe) advance(side int, d int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clock[side] += d
}

// tcpExchange is one TCP connection to run: its endpoints and the two
// programs that talk over it.
type tcpExchange struct {
	app, desc string
	server    netip.AddrPort
	v6        bool
	ttl       uint8 // server TTL as seen at the capture point
	rtt       int64 // ns
	client    func(p *pipe, c net.Conn) error
	serve     func(p *pipe, c net.Conn) error
}

// runTCP runs x starting with the client's SYN at t0 and records its frames.
// It returns the capture time of the connection's last frame.
func (w *world) runTCP(t0 int64, x tcpExchange) (int64, error) {
	r := w.newRand()
	cli := w.clientNode(w.ephemeral(), x.v6)
	srv := w.remoteNode(x.server, x.ttl)
	mss := mssV4
	if x.v6 {
		mss = mssV6
	}
	tp := &tcpParams{
		ends:   [2]node{cli, srv},
		isn:    [2]uint32{r.r.Uint32(), r.r.Uint32()},
		tsOff:  [2]uint32{r.r.Uint32(), r.r.Uint32()},
		win:    [2]uint16{uint16(r.between(490, 512)), uint16(r.between(250, 1100))},
		wscale: [2]uint8{7, uint8(r.between(7, 10))},
		synWin: [2]uint16{64240, 65535},
		t0:     t0,
		owd:    x.rtt / 2,
		synAck: r.between(15_000, 150_000),
	}
	cT, sT := tp.handshakeClocks()
	p := newPipe(tp.owd, mss, cT, sT, w.newRand(), w.newRand())
	done := make(chan error, 1)
	go func() { done <- x.serve(p, p.conn(sideServer)) }()
	cerr := x.client(p, p.conn(sideClient))
	_ = p.conn(sideClient).Close()
	serr := <-done
	if cerr != nil {
		return 0, fmt.Errorf("samplegen: %s: client: %w", x.desc, cerr)
	}
	if serr != nil {
		return 0, fmt.Errorf("samplegen: %s: server: %w", x.desc, serr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var fb [2]frameBuilder
	fb[0].ipID, fb[1].ipID = uint16(r.intn(65536)), uint16(r.intn(65536))
	frames := buildTCP(tp, p, &fb)
	w.addFlow(x.app, x.desc, protoTCP, cli, srv, frames)
	last := t0
	for _, f := range frames {
		last = max(last, f.t)
	}
	return last, nil
}

// httpReq is one request of an HTTP client session.
type httpReq struct {
	method, path string
	body         []byte
	ctype        string
	pause        int64 // client think time before sending, ns
}

// resource is what a simulated web server returns for a path.
type resource struct {
	status int
	ctype  string
	body   []byte
}

// site is a simulated web server.
type site struct {
	host   string
	server string // Server header
	pages  map[string]resource
	post   func(body []byte) resource // answers POST requests, if set
}

// handler serves s with the server's virtual time in the Date header.
func (s *site) handler(p *pipe) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		h := rw.Header()
		h.Set("Date", time.Unix(0, p.now(sideServer)).UTC().Format(http.TimeFormat))
		h.Set("Server", s.server)
		res, ok := s.pages[req.URL.Path]
		if req.Method == http.MethodPost && s.post != nil {
			b, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(rw, "bad request", http.StatusBadRequest)
				return
			}
			res, ok = s.post(b), true
		}
		if !ok {
			res = resource{status: http.StatusNotFound, ctype: "text/html; charset=UTF-8", body: []byte("<html><body><h1>404 Not Found</h1></body></html>\n")}
		}
		h.Set("Content-Type", res.ctype)
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
		if res.status == http.StatusOK {
			h.Set("Cache-Control", "private, max-age=0")
		}
		rw.WriteHeader(res.status)
		_, _ = rw.Write(res.body)
	})
}

// httpServer serves s on the server side of a pipe (with TLS when cfg is
// set) until the connection is closed.
func httpServer(s *site, cfg func(p *pipe) *tls.Config) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		var l net.Listener = newOneConnListener(c)
		if cfg != nil {
			l = tls.NewListener(l, cfg(p))
		}
		srv := &http.Server{Handler: s.handler(p), ErrorLog: log.New(io.Discard, "", 0)}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(l) }()
		p.waitClosed(sideServer)
		_ = l.Close()
		<-errc
		return nil
	}
}

// httpClient runs reqs over one connection (TLS when cfg is set) with the
// net/http wire code, reading each response in full.
func httpClient(host string, cfg func(p *pipe) *tls.Config, ua string, reqs []httpReq) func(p *pipe, c net.Conn) error {
	return func(p *pipe, c net.Conn) error {
		conn := c
		scheme := "http"
		if cfg != nil {
			tc := tls.Client(c, cfg(p))
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("TLS handshake with %s: %w", host, err)
			}
			conn, scheme = tc, "https"
		}
		br := bufio.NewReader(conn)
		for _, rq := range reqs {
			p.advance(sideClient, rq.pause)
			var body io.Reader
			if rq.body != nil {
				body = bytes.NewReader(rq.body)
			}
			req, err := http.NewRequest(rq.method, scheme+"://"+host+rq.path, body)
			if err != nil {
				return err
			}
			req.Header.Set("User-Agent", ua)
			req.Header.Set("Accept", "*/*")
			if rq.ctype != "" {
				req.Header.Set("Content-Type", rq.ctype)
				req.Header.Set("Accept", rq.ctype)
			} else if ua != uaApt {
				req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
				req.Header.Set("Accept-Language", "en-US,en;q=0.5")
			}
			if err := req.Write(conn); err != nil {
				return fmt.Errorf("writing request %s: %w", rq.path, err)
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				return fmt.Errorf("reading response to %s: %w", rq.path, err)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("reading body of %s: %w", rq.path, err)
			}
		}
		return conn.Close()
	}
}

// User agents of the simulated clients.
const (
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaApt     = "Debian APT-HTTP/1.3 (2.6.1)"
)

// tlsConfigs returns the client and server TLS configurations for host:
// a seeded self-signed certificate, seeded randomness and the pipe's
// virtual clocks. maxVersion 0 means TLS 1.3.
func (w *world) tlsConfigs(host string, maxVersion uint16, alpn []string) (client, server func(p *pipe) *tls.Config, err error) {
	cert, err := w.cert(host)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	cr, sr := w.newRand(), w.newRand()
	if maxVersion == 0 {
		maxVersion = tls.VersionTLS13
	}
	serverALPN := alpn
	if len(alpn) > 1 {
		serverALPN = alpn[len(alpn)-1:] // offer h2+http/1.1, answer http/1.1
	}
	client = func(p *pipe) *tls.Config {
		return &tls.Config{
			ServerName: host, RootCAs: pool, Rand: cr, NextProtos: alpn, KeyLogWriter: w.keyLog,
			Time:             func() time.Time { return time.Unix(0, p.now(sideClient)) },
			CurvePreferences: []tls.CurveID{tls.X25519},
			MaxVersion:       maxVersion,
		}
	}
	server = func(p *pipe) *tls.Config {
		return &tls.Config{
			Certificates: []tls.Certificate{cert}, Rand: sr, NextProtos: serverALPN,
			Time:             func() time.Time { return time.Unix(0, p.now(sideServer)) },
			CurvePreferences: []tls.CurveID{tls.X25519},
			MaxVersion:       maxVersion,
		}
	}
	return client, server, nil
}

// dgram is one UDP datagram of an exchange.
type dgram struct {
	fromClient bool
	t          int64
	payload    []byte
}

// addUDP records a UDP flow between cli and srv.
func (w *world) addUDP(app, desc string, cli, srv node, dgs []dgram) {
	r := w.newRand()
	var fb [2]frameBuilder
	fb[0].ipID, fb[1].ipID = uint16(r.intn(65536)), uint16(r.intn(65536))
	frames := make([]frame, 0, len(dgs))
	for _, d := range dgs {
		src, dst, b := cli, srv, &fb[0]
		if !d.fromClient {
			src, dst, b = srv, cli, &fb[1]
		}
		seg := udpSegment(src.addr.Port(), dst.addr.Port(), d.payload)
		frames = append(frames, frame{t: d.t, data: b.build(src, dst, protoUDP, seg, d.fromClient)})
	}
	w.addFlow(app, desc, protoUDP, cli, srv, frames)
}
