package haproxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Run from cloud/ with:
//
//	go test ./internal/haproxy/ -run '^$' -bench ReplaceMap100k -benchtime 10x
//	go test ./internal/haproxy/ -run '^$' -bench RouteActivation -benchtime 1000x
//
// -benchtime 1000x makes exactly 1,000 AddMap calls per sub-benchmark.

// BenchmarkReplaceMap100k loads 100,000 routes into an empty map, as the
// reconciler does at start, and compares the worker's RSS before and after.
// Each further iteration replaces the full map with itself.
func BenchmarkReplaceMap100k(b *testing.B) {
	e := needEnv(b)
	ctx := context.Background()
	name := e.mapName(MapHTTPS)
	if err := e.client.ClearMap(ctx, name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.client.ClearMap(ctx, name) })
	entries := bulkEntries(100_000, e.params.TunnelPorts)

	rssEmpty := workerRSS(b, e)
	start := time.Now()
	if err := e.client.ReplaceMap(ctx, name, entries); err != nil {
		b.Fatal(err)
	}
	firstLoad := time.Since(start)
	rssFull := workerRSS(b, e)
	if got, err := e.client.ShowMap(ctx, name); err != nil || len(got) != len(entries) {
		b.Fatalf("show map: %d entries, %v; want %d", len(got), err, len(entries))
	}

	for b.Loop() {
		if err := e.client.ReplaceMap(ctx, name, entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(firstLoad.Milliseconds()), "first-load-ms")
	b.ReportMetric(float64(rssEmpty)/1024, "rss-empty-MiB")
	b.ReportMetric(float64(rssFull)/1024, "rss-100k-MiB")
	b.ReportMetric(float64(rssFull)/float64(rssEmpty), "rss-ratio")
	b.Logf("100k routes: first load %v; worker RSS %d KiB empty, %d KiB with 100k (x%.2f, +%d bytes/route)",
		firstLoad.Round(time.Millisecond), rssEmpty, rssFull, float64(rssFull)/float64(rssEmpty),
		(rssFull-rssEmpty)*1024/int64(len(entries)))
}

// BenchmarkRouteActivation measures, for each AddMap, the time from the call
// returning to the first routed HTTP request answered by the tunnel, with
// the map empty and holding 100,000 other routes.
func BenchmarkRouteActivation(b *testing.B) {
	e := needEnv(b)
	ctx := context.Background()
	name := e.mapName(MapHTTP)
	ln, port := e.listenTunnel(b)
	serveHTTP(b, ln, "bench")

	for _, preload := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("preload=%d", preload), func(b *testing.B) {
			if err := e.client.ReplaceMap(ctx, name, bulkEntries(preload, e.params.TunnelPorts)); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { e.client.ClearMap(ctx, name) })

			// Baseline: the same request on a route that already exists.
			warm := "warm.bench.example.com"
			if err := e.client.AddMap(ctx, name, warm, strconv.Itoa(port)); err != nil {
				b.Fatal(err)
			}
			var base []time.Duration
			for range 200 {
				t0 := time.Now()
				if code, err := tryGet(e.httpAddr, warm); code != 200 {
					b.Fatalf("warm route: %d %v", code, err)
				}
				base = append(base, time.Since(t0))
			}

			var lat []time.Duration
			retries := 0
			i := 0
			for b.Loop() {
				host := fmt.Sprintf("a%d-%d.bench.example.com", preload, i)
				i++
				if err := e.client.AddMap(ctx, name, host, strconv.Itoa(port)); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				for {
					code, _ := tryGet(e.httpAddr, host)
					if code == 200 {
						break
					}
					retries++
					if time.Since(t0) > 5*time.Second {
						b.Fatalf("route %s not active after 5s", host)
					}
				}
				lat = append(lat, time.Since(t0))
			}
			p50, p99 := percentile(lat, 50), percentile(lat, 99)
			b.ReportMetric(float64(p50.Microseconds()), "p50-us")
			b.ReportMetric(float64(p99.Microseconds()), "p99-us")
			b.ReportMetric(float64(percentile(base, 50).Microseconds()), "warm-p50-us")
			b.ReportMetric(float64(retries), "retries")
			b.Logf("%d AddMap calls with %d routes preloaded: activation p50 %v p99 %v (request on a warm route p50 %v); %d requests before activation",
				len(lat), preload, p50, p99, percentile(base, 50), retries)
		})
	}
}

func bulkEntries(n int, tunnels PortRange) []Entry {
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{
			Key:   fmt.Sprintf("h%06d.bulk.example.com", i),
			Value: strconv.Itoa(tunnels.First + i%(tunnels.Last-tunnels.First+1)),
		}
	}
	return entries
}

// workerRSS returns VmRSS in KiB of the worker answering the admin socket.
func workerRSS(b *testing.B, e *testEnv) int64 {
	b.Helper()
	kb, err := e.client.WorkerRSS(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return kb
}

// tryGet sends one request for host on a fresh connection and returns the status.
func tryGet(addr, host string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
	req.Close = true
	if err := req.Write(c); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
