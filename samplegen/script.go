package samplegen

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Milliseconds in ns, for readability of the script.
const ms = int64(time.Millisecond)

// visit is one web connection of the script.
type visit struct {
	app     string
	site    *site
	https   bool
	tlsMax  uint16 // 0: TLS 1.3
	v6      bool
	rtt     int64
	ttl     uint8
	ua      string
	reqs    []httpReq
	lookups []dnsmessage.Type // DNS queries before connecting
}

// run plays the whole script: a user's browsing session with DNS lookups,
// plus DoT, BitTorrent, a call and the LAN's discovery chatter.
func (w *world) run() error {
	r := w.newRand()
	page := func(title string, n int) resource {
		return resource{status: http.StatusOK, ctype: "text/html; charset=utf-8", body: textBody(r, title, n, true)}
	}
	jsonRes := func(s string) resource {
		return resource{status: http.StatusOK, ctype: "application/json", body: []byte(s)}
	}
	get := func(path string, pause int64) httpReq {
		return httpReq{method: http.MethodGet, path: path, pause: pause}
	}
	visits := []visit{
		{app: "HTTP", site: &site{host: "neverssl.com", server: "Apache/2.4.62 ()", pages: map[string]resource{
			"/": page("NeverSSL - Connecting ...", 2600), "/online/": page("NeverSSL - helping you get online", 3900)}},
			rtt: 148 * ms, ttl: 44, ua: uaFirefox, reqs: []httpReq{get("/", 0), get("/online/", 180*ms)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Google", site: &site{host: "connectivitycheck.gstatic.com", server: "gws", pages: map[string]resource{
			"/generate_204": {status: http.StatusNoContent}}},
			rtt: 11 * ms, ttl: 118, ua: "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240105.004)", reqs: []httpReq{get("/generate_204", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Google", site: &site{host: "www.google.com", server: "gws", pages: map[string]resource{
			"/": page("Google", 14500), "/complete/search": jsonRes(`["netmamba",["netmamba paper","netmamba github","netmamba traffic classification"],[],{"google:suggesttype":["QUERY","QUERY","QUERY"]}]`)}},
			https: true, rtt: 12 * ms, ttl: 118, ua: uaFirefox, reqs: []httpReq{get("/", 0), get("/complete/search?client=firefox&q=netmamba", 900*ms)},
			lookups: []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}},
		{app: "Google", site: &site{host: "www.google.com", server: "gws", pages: map[string]resource{
			"/search": page("netmamba - Google Search", 9800)}},
			https: true, v6: true, rtt: 14 * ms, ttl: 117, ua: uaFirefox, reqs: []httpReq{get("/search?q=netmamba&client=firefox-b-e", 0)}},
		{app: "GoogleServices", site: &site{host: "fonts.googleapis.com", server: "ESF", pages: map[string]resource{
			"/css2": {status: http.StatusOK, ctype: "text/css; charset=utf-8", body: textBody(r, "", 1400, false)}}},
			https: true, rtt: 12 * ms, ttl: 118, ua: uaFirefox, reqs: []httpReq{get("/css2?family=Roboto:wght@400;500&display=swap", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "GoogleServices", site: &site{host: "www.gstatic.com", server: "sffe", pages: map[string]resource{
			"/images/branding/googlelogo/2x/googlelogo_color_272x92dp.png": {status: http.StatusOK, ctype: "image/png", body: binaryBody(r, []byte("\x89PNG\r\n\x1a\n"), 5969)}}},
			https: true, rtt: 12 * ms, ttl: 118, ua: uaFirefox, reqs: []httpReq{get("/images/branding/googlelogo/2x/googlelogo_color_272x92dp.png", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "HTTP", site: &site{host: "deb.debian.org", server: "Apache", pages: map[string]resource{
			"/debian/dists/bookworm/InRelease": {status: http.StatusOK, ctype: "text/plain", body: textBody(r, "", 12000, false)}}},
			rtt: 22 * ms, ttl: 57, ua: uaApt, reqs: []httpReq{get("/debian/dists/bookworm/InRelease", 0), get("/debian/dists/bookworm-updates/InRelease", 30*ms)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Dropbox", site: &site{host: "www.dropbox.com", server: "envoy", pages: map[string]resource{
			"/": page("Dropbox", 8700), "/2/files/list_folder": jsonRes(`{"entries":[],"cursor":"AAE","has_more":false}`)}},
			https: true, tlsMax: tls.VersionTLS12, rtt: 26 * ms, ttl: 55, ua: uaFirefox, reqs: []httpReq{get("/", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Discord", site: &site{host: "discord.com", server: "cloudflare", pages: map[string]resource{
			"/app": page("Discord", 6100), "/api/v9/experiments": jsonRes(`{"fingerprint":"1186349572.x","assignments":[[4130837190,0,1,-1,0,1932,0,0]],"guild_experiments":[]}`)}},
			https: true, rtt: 16 * ms, ttl: 58, ua: uaFirefox, reqs: []httpReq{get("/app", 0), get("/api/v9/experiments", 350*ms)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Microsoft", site: &site{host: "teams.microsoft.com", server: "Microsoft-IIS/10.0", pages: map[string]resource{
			"/": page("Microsoft Teams", 5200)}},
			https: true, rtt: 21 * ms, ttl: 110, ua: uaFirefox, reqs: []httpReq{get("/", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Microsoft", site: &site{host: "login.microsoftonline.com", server: "Microsoft-IIS/10.0", post: func([]byte) resource {
			return jsonRes(`{"token_type":"Bearer","scope":"openid profile","expires_in":4493,"ext_expires_in":4493,"access_token":"eyJ0eXAiOiJKV1QiLCJub25jZSI6InNhbXBsZSJ9"}`)
		}},
			https: true, tlsMax: tls.VersionTLS12, rtt: 24 * ms, ttl: 110, ua: uaFirefox,
			reqs:    []httpReq{{method: http.MethodPost, path: "/common/oauth2/v2.0/token", ctype: "application/x-www-form-urlencoded", body: []byte("client_id=5e3ce6c0-2b1f-4285-8d4b-75ee78787346&grant_type=refresh_token&scope=openid%20profile&refresh_token=0.AAAA")}},
			lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "Zoom", site: &site{host: "zoom.us", server: "ZOOM", pages: map[string]resource{
			"/": page("One platform to connect | Zoom", 7600)}},
			https: true, rtt: 31 * ms, ttl: 51, ua: uaFirefox, reqs: []httpReq{get("/", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "WhatsApp", site: &site{host: "web.whatsapp.com", server: "proxygen-bolt", pages: map[string]resource{
			"/": page("WhatsApp", 4300)}},
			https: true, rtt: 18 * ms, ttl: 57, ua: uaFirefox, reqs: []httpReq{get("/", 0)}, lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "WhatsApp", site: &site{host: "g.whatsapp.net", server: "proxygen-bolt", post: func([]byte) resource {
			return jsonRes(`{"url":"https://mmg.whatsapp.net/v/t62.7118-24/sample","direct_path":"/v/t62.7118-24/sample"}`)
		}},
			https: true, tlsMax: tls.VersionTLS12, rtt: 18 * ms, ttl: 57, ua: "WhatsApp/2.24.1.6 A",
			reqs:    []httpReq{{method: http.MethodPost, path: "/mms/image/upload", ctype: "application/octet-stream", body: binaryBody(r, []byte{0xff, 0xd8, 0xff, 0xe0}, 3100)}},
			lookups: []dnsmessage.Type{dnsmessage.TypeA}},
		{app: "DoH_DoT", site: &site{host: "dns.google", server: "HTTP server (unknown)", post: func(q []byte) resource {
			ans, err := dnsAnswer(q, w.zone, 300)
			if err != nil {
				return resource{status: http.StatusBadRequest, ctype: "text/plain", body: []byte(err.Error())}
			}
			return resource{status: http.StatusOK, ctype: "application/dns-message", body: ans}
		}},
			https: true, rtt: 9 * ms, ttl: 119, ua: uaFirefox, reqs: w.dohRequests(r, []string{"example.org.", "www.wikipedia.org.", "discord.com."}),
			lookups: []dnsmessage.Type{dnsmessage.TypeA}},
	}
	t := w.start + r.between(50*ms, 200*ms)
	for _, v := range visits {
		if err := w.playVisit(t, v); err != nil {
			return err
		}
		t += r.between(120*ms, 900*ms)
	}
	end := t
	// DNS over TLS to Cloudflare's resolver.
	ccfg, scfg, err := w.tlsConfigs("cloudflare-dns.com", 0, []string{"dot"})
	if err != nil {
		return err
	}
	dotRand := w.newRand()
	if _, err := w.runTCP(w.start+r.between(300*ms, 2000*ms), tcpExchange{app: "DoH_DoT", desc: "DNS over TLS cloudflare-dns.com",
		server: netip.MustParseAddrPort("1.1.1.1:853"), ttl: 58, rtt: 8 * ms,
		client: dotClient(ccfg, dotRand, []string{"zoom.us.", "deb.debian.org.", "unknown.invalid."}),
		serve:  dotServer(scfg, w.zone)}); err != nil {
		return err
	}
	if err := w.bittorrent(w.start+r.between(500*ms, 3000*ms), r); err != nil {
		return err
	}
	if err := w.call(w.start+r.between(1000*ms, 4000*ms), r); err != nil {
		return err
	}
	switch err := w.quicFlow(w.start+r.between(800*ms, 4000*ms), "Google", "www.google.com", netip.MustParseAddr("142.250.185.68"), 12*ms, 118, w.newRand()); err {
	case nil, errQUICSuite:
	default:
		return err
	}
	if err := w.ipsec(w.start+r.between(2000*ms, 5000*ms), r); err != nil {
		return err
	}
	if err := w.dnscrypt(w.start+r.between(200*ms, 6000*ms), r); err != nil {
		return err
	}
	if err := w.lanChatter(w.start, end, r); err != nil {
		return err
	}
	return nil
}

// dohRequests are DNS-over-HTTPS POSTs (RFC 8484) for names.
func (w *world) dohRequests(r *detRand, names []string) []httpReq {
	var out []httpReq
	for i, n := range names {
		q, err := dnsQuery(0, n, dnsmessage.TypeA) // RFC 8484 recommends ID 0
		if err != nil {
			continue // names are constants: cannot fail
		}
		pause := int64(0)
		if i > 0 {
			pause = r.between(20*ms, 400*ms)
		}
		out = append(out, httpReq{method: http.MethodPost, path: "/dns-query", ctype: "application/dns-message", body: q, pause: pause})
	}
	return out
}

// playVisit resolves the site's name, then opens the connection.
func (w *world) playVisit(t int64, v visit) error {
	host := v.site.host
	addrs := w.zone[host+"."]
	var server netip.Addr
	for _, a := range addrs {
		if a.Is6() == v.v6 {
			server = a
			break
		}
	}
	if !server.IsValid() {
		return fmt.Errorf("samplegen: no address for %s (IPv6 %v)", host, v.v6)
	}
	connectAt := t
	for i, qt := range v.lookups {
		done, err := w.lookup(t+int64(i)*150_000, host+".", qt)
		if err != nil {
			return err
		}
		connectAt = max(connectAt, done+100_000)
	}
	port := uint16(80)
	var ccfg, scfg func(p *pipe) *tls.Config
	desc := "HTTP " + host
	if v.https {
		port = 443
		var err error
		ccfg, scfg, err = w.tlsConfigs(host, v.tlsMax, []string{"h2", "http/1.1"})
		if err != nil {
			return err
		}
		desc = "HTTPS TLS 1.3 " + host
		if v.tlsMax == tls.VersionTLS12 {
			desc = "HTTPS TLS 1.2 " + host
		}
	}
	if v.v6 {
		desc += " (IPv6)"
	}
	_, err := w.runTCP(connectAt, tcpExchange{app: v.app, desc: desc, server: netip.AddrPortFrom(server, port), v6: v.v6,
		ttl: v.ttl, rtt: v.rtt, client: httpClient(host, ccfg, v.ua, v.reqs), serve: httpServer(v.site, scfg)})
	return err
}
