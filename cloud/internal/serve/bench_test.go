package serve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// BenchmarkRouteActivation measures, over 1,000 mappings created through the
// REST API, the time from the API call returning to the first request routed
// through HAProxy to the mapping's tunnel port; the baseline is the latency of
// the same request on a route that already exists.
//
//	go test ./internal/serve -run '^$' -bench RouteActivation -benchtime 1x
func BenchmarkRouteActivation(b *testing.B) {
	const homes, perHome = 63, 16 // 1,008 mappings
	c := cloudtest.Start(b, cloudtest.Options{HAProxy: true, Slots: homes + 1, Args: []string{"--mappings-per-home", "16"}})
	type target struct {
		token, slug, domain string
		ports               proto.PortRange
	}
	var targets []target
	for i := 0; i < homes; i++ {
		h := c.NewHome(b, fmt.Sprintf("u%d", i/2))
		tok := c.Token(b, h.User)
		d := fmt.Sprintf("home%d.test", i)
		if st := api(b, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: d}, nil); st != 201 {
			b.Fatalf("base domain: %d", st)
		}
		targets = append(targets, target{tok, h.Slug, d, h.Tunnel})
		for p := h.Tunnel.First; p <= h.Tunnel.Last; p++ {
			httpOK(b, p)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	get := func(host string) bool {
		req, _ := http.NewRequest("GET", "http://"+c.HTTPAddr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var activation, steady []time.Duration
		for i, tg := range targets {
			for j := 0; j < perHome; j++ {
				host := fmt.Sprintf("h%d-%d.%s", n, j, tg.domain)
				var m proto.Mapping
				if st := api(b, c, tg.token, "POST", "/api/v1/homes/"+tg.slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: host}, &m); st != 201 {
					b.Fatalf("mapping %d/%d: %d", i, j, st)
				}
				start := time.Now()
				for tries := 0; !get(host); tries++ {
					if tries > 1000 {
						b.Fatalf("%s never routed", host)
					}
				}
				activation = append(activation, time.Since(start))
				start = time.Now()
				if !get(host) {
					b.Fatalf("%s stopped routing", host)
				}
				steady = append(steady, time.Since(start))
			}
			// Free the ports for the next iteration.
			var ms []proto.Mapping
			api(b, c, tg.token, "GET", "/api/v1/homes/"+tg.slug+"/mappings", nil, &ms)
			for _, m := range ms {
				api(b, c, tg.token, "DELETE", fmt.Sprintf("/api/v1/homes/%s/mappings/%d", tg.slug, m.ID), nil, nil)
			}
		}
		a50, a99 := pct(activation, 50), pct(activation, 99)
		s50, s99 := pct(steady, 50), pct(steady, 99)
		b.ReportMetric(float64(a99.Microseconds()), "activation-p99-µs")
		b.Logf("route activation over %d mappings (API returned -> first routed request): p50 %v p99 %v; existing route: p50 %v p99 %v; ratio p99 %.2fx",
			len(activation), a50, a99, s50, s99, float64(a99)/float64(s99))
	}
}

// BenchmarkStartWithManyMappings measures a cloud start (map files from the
// database, HAProxy start, routes verified) with many mappings against the
// same start with none, and HAProxy's RSS in both.
//
//	go test ./internal/serve -run '^$' -bench StartWithManyMappings -benchtime 1x
func BenchmarkStartWithManyMappings(b *testing.B) {
	// Every mapping owns a tunnel port, so one cloud holds at most ~45,000;
	// 1,000 homes x 16 = 16,000 mappings (100k-entry map loads are measured
	// directly in internal/haproxy's BenchmarkReplaceMap100k).
	const homes, perHome = 1000, 16
	for n := 0; n < b.N; n++ {
		emptyStart, emptyRSS := timedStart(b, 0, homes, perHome)
		fullStart, fullRSS := timedStart(b, homes*perHome, homes, perHome)
		b.ReportMetric(float64(fullStart.Milliseconds()), "start-ms")
		b.Logf("start with %d mappings: %v (empty: %v, ratio %.2fx); HAProxy worker RSS %d KiB (empty: %d KiB, ratio %.2fx)",
			homes*perHome, fullStart, emptyStart, float64(fullStart)/float64(emptyStart), fullRSS, emptyRSS, float64(fullRSS)/float64(emptyRSS))
	}
}

func timedStart(b *testing.B, mappings, homes, perHome int) (time.Duration, int64) {
	b.Helper()
	dir := b.TempDir()
	c := cloudtest.Start(b, cloudtest.Options{HAProxy: true, Dir: dir, Slots: homes})
	if mappings > 0 {
		seed(b, c, homes, perHome)
	}
	start := time.Now()
	c = c.Restart(b)
	took := time.Since(start)
	rep, err := c.App.Routes.Routes(context.Background())
	if err != nil || !rep.InSync || len(rep.Routes) != mappings {
		b.Fatalf("after start: %d routes, in sync %v, %v", len(rep.Routes), rep.InSync, err)
	}
	rss := workerRSS(b, c)
	c.Stop()
	return took, rss
}

// seed inserts homes and http mappings straight into the database.
func seed(b *testing.B, c *cloudtest.Cloud, homes, perHome int) {
	b.Helper()
	db := c.App.DB
	u := store.User{Username: "seed", Email: "seed@example.com", PasswordHash: "x", Role: proto.RoleUser, Active: true}
	if err := db.Create(&u).Error; err != nil {
		b.Fatal(err)
	}
	layout := c.App.Homes.Layout()
	hs := make([]store.Home, homes)
	for i := range hs {
		hs[i] = store.Home{Slot: i, Slug: fmt.Sprintf("seed%d", i), UserID: u.ID, PublicKey: "k", KeyFingerprint: fmt.Sprint("fp", i)}
	}
	if err := db.CreateInBatches(hs, 500).Error; err != nil {
		b.Fatal(err)
	}
	var ms []store.Mapping
	for i, h := range hs {
		for j := 0; j < perHome; j++ {
			host := fmt.Sprintf("h%d.seed%d.test", j, i)
			ms = append(ms, store.Mapping{HomeID: h.ID, Scheme: proto.SchemeHTTP, Host: &host, TunnelPort: layout.TunnelPorts(h.Slot).First + j})
		}
	}
	if err := db.CreateInBatches(ms, 1000).Error; err != nil {
		b.Fatal(err)
	}
}

func workerRSS(b *testing.B, c *cloudtest.Cloud) int64 {
	b.Helper()
	kb, err := (&haproxy.Client{SocketPath: c.App.Config.HAProxySocketPath()}).WorkerRSS(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return kb
}

func httpOK(b *testing.B, port int) {
	serveTunnelPort(b, port, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		// HTTP comes without a PROXY header (--reuse-home-connections).
		if _, err := proxyproto.Read(br); err != nil && !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			return
		}
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}
