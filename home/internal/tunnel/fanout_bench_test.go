package tunnel_test

// The edge fan-out of BenchmarkVersusOpenSSHD: HTTP to many homes vs one.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
)

// Bounds of the fan-out (see fanOut).
const (
	vsFanConc = 64 // concurrent HTTP clients
	vsFanTime = 3 * time.Second
)

// fanOut measures requests/s through HAProxy at vsFanConc concurrent
// clients spread over vsFanHomes homes (one HTTP mapping each) vs all to one
// of them, with each process's CPU per request (3 interleaved rounds), on
// two paths one after the other: homeport, the homes all forwarded by one
// agent process (see runBenchHome); then the anchor, with the agent
// stopped and the same tunnel ports owned by sshd, each through its own
// tuned `ssh -R` as in the other figures. Both forward to one local HTTP
// service in this process.
func fanOut(b *testing.B, c *hometest.Cloud, u *hometest.User, sshd sshdServer) {
	b.Helper()
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			fanServiceConns.Add(1)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go web.Serve(ln)
	b.Cleanup(func() { web.Close() })
	target := ln.Addr().String()

	start := time.Now()
	homes := make([]benchHomeConfig, vsFanHomes)
	hosts := fanHomes(b, c, u, func(i int, h *hometest.Home, m proto.Mapping) {
		homes[i] = benchHomeConfig{Slug: h.Slug, Addr: h.SSHAddr(), KeyPath: h.KeyPath, HostKey: h.SSH.HostKey,
			TunnelPort: m.TunnelPort, Target: target, HTTP: true}
	})
	if b.Failed() {
		return
	}
	agentPid, stopAgent := startBenchHome(b, homes...)
	fanWarm(b, c.HTTPAddr, hosts)
	fmt.Printf("\nfan-out: %d homes up in %s\n", vsFanHomes, time.Since(start).Round(time.Millisecond))
	cloudPid, haproxyPid := c.Pids()
	this := fanProc{"this process (clients, web server)", []int{os.Getpid()}, nil, false}
	homeport := fanPath{name: "homeport", hosts: hosts, visitors: func() int64 { return visitorsTotal(c) }, procs: []fanProc{
		{"cloud", []int{cloudPid}, nil, true}, {"HAProxy", nil, []int{haproxyPid}, false}, {"agent", []int{agentPid}, nil, true}, this}}
	homeport.measure(c.HTTPAddr)
	homeport.report()

	if os.Getenv("HOMEPORT_BENCH_FANOUT_ANCHOR") == "0" {
		return
	}
	start = time.Now()
	stopAgent()
	clients := make([]int, vsFanHomes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, h := range homes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			waitPortFree(b, h.TunnelPort) // the cloud lets go of it once the agent is gone
			clients[i] = startSSHClient(b, sshd.addr, sshd.user, sshd.key, h.TunnelPort, target, true)
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	fanWarm(b, c.HTTPAddr, hosts)
	fmt.Printf("fan-out: the same %d homes through sshd and %d ssh clients in %s\n", vsFanHomes, vsFanHomes, time.Since(start).Round(time.Millisecond))
	anchor := fanPath{name: "sshd-tuned", hosts: hosts, procs: []fanProc{
		{"sshd", nil, []int{sshd.pid}, true}, {"HAProxy", nil, []int{haproxyPid}, false}, {"ssh clients", clients, nil, true}, this}}
	anchor.measure(c.HTTPAddr)
	anchor.report()
	fmt.Printf("homeport/sshd-tuned, round by round: %d homes %s, one home %s\n", vsFanHomes,
		spread(ratios(homeport.many.rates, anchor.many.rates), "%.2f"), spread(ratios(homeport.one.rates, anchor.one.rates), "%.2f"))
	b.ReportMetric(median(ratios(homeport.many.rates, homeport.one.rates)), "fanout-ratio")
	b.ReportMetric(median(ratios(anchor.many.rates, anchor.one.rates)), "sshd-fanout-ratio")
}

// waitPortFree waits (10 s at most) until nothing listens on the loopback
// port.
func waitPortFree(b *testing.B, port int) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Errorf("port %d still taken 10 s after the agent stopped: %v", port, err)
			return
		}
	}
}

// fanHomes claims vsFanHomes homes (8 at a time), each with the base
// domain hI.fan.test and an HTTP mapping of www.hI.fan.test, and calls
// each with its home and mapping. It returns the hosts in order.
func fanHomes(b *testing.B, c *hometest.Cloud, u *hometest.User, each func(i int, h *hometest.Home, m proto.Mapping)) []string {
	hosts := make([]string, vsFanHomes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range vsFanHomes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h := c.ClaimHome(b, u)
			domain := fmt.Sprintf("h%d.fan.test", i)
			h.AddBaseDomain(b, domain)
			m := h.Map(b, proto.MappingRequest{Scheme: "http", Host: "www." + domain})
			hosts[i] = "www." + domain
			each(i, h, m)
		}()
	}
	wg.Wait()
	return hosts
}

// fanWarm has every host answer once (its forward is up) before measuring.
func fanWarm(b *testing.B, addr string, hosts []string) {
	b.Helper()
	client := fanClient(addr)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for _, host := range hosts {
		for {
			err := fanGet(client, host)
			if err == nil {
				break
			} else if time.Now().After(deadline) {
				b.Fatalf("%s never answered: %v", host, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// fanPath is one path of the fan-out: its hosts, the processes whose CPU
// it reports, and what it measured.
type fanPath struct {
	name      string
	hosts     []string
	procs     []fanProc
	visitors  func() int64 // connections the tunnel ports accepted so far (nil: not known)
	many, one fanFigures
}

// fanProc is one process of a path (or several, or a tree: see pathCPU).
type fanProc struct {
	name        string
	self, trees []int
	tunnel      bool // the tunnel's own (its edge end or its home end)
}

type fanFigures struct {
	rates, p99s []float64
	cpu         [][]float64 // µs per request, per process, per round
	dials       []float64   // new connections to the web server per request
	visits      []float64   // new connections to the tunnel ports per request
}

// fanServiceConns counts the connections the fan-out's web server accepted.
var fanServiceConns atomic.Int64

// measure takes 3 rounds, each: requests to all hosts, then to the first.
func (p *fanPath) measure(addr string) {
	for range 3 {
		p.many.add(addr, p.hosts, p.procs, p.visitors)
		p.one.add(addr, p.hosts[:1], p.procs, p.visitors)
	}
}

func (f *fanFigures) add(addr string, hosts []string, procs []fanProc, visitors func() int64) {
	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		before[i] = pathCPU(p.self, p.trees)
	}
	conns := fanServiceConns.Load()
	var visits int64
	if visitors != nil {
		visits = visitors()
	}
	rate, p99 := fanRate(addr, hosts)
	f.rates, f.p99s = append(f.rates, rate), append(f.p99s, p99)
	if f.cpu == nil {
		f.cpu = make([][]float64, len(procs))
	}
	requests := rate * vsFanTime.Seconds()
	f.dials = append(f.dials, float64(fanServiceConns.Load()-conns)/requests)
	if visitors != nil {
		f.visits = append(f.visits, float64(visitors()-visits)/requests)
	}
	for i, p := range procs {
		f.cpu[i] = append(f.cpu[i], (pathCPU(p.self, p.trees)-before[i]).Seconds()*1e6/requests)
	}
}

func (p fanPath) report() {
	fmt.Printf("%s, HTTP at %d clients: %d homes %s req/s (p99 %s ms), one home %s req/s (p99 %s ms); %d homes/one home %s\n",
		p.name, vsFanConc, vsFanHomes, spread(p.many.rates, "%.0f"), spread(p.many.p99s, "%.1f"),
		spread(p.one.rates, "%.0f"), spread(p.one.p99s, "%.1f"), vsFanHomes, spread(ratios(p.many.rates, p.one.rates), "%.2f"))
	var cpu []string
	for i, proc := range p.procs {
		cpu = append(cpu, fmt.Sprintf("%s %s vs %s", proc.name, spread(p.many.cpu[i], "%.0f"), spread(p.one.cpu[i], "%.0f")))
	}
	fmt.Printf("  CPU per request (µs), %d homes vs one home: %s\n", vsFanHomes, strings.Join(cpu, ", "))
	cores, bound := p.bound()
	fmt.Printf("  new connections per request to the tunnel ports: %d homes %s, one home %s; to the web server: %s, %s\n", vsFanHomes,
		spread(p.many.visits, "%.3f"), spread(p.one.visits, "%.3f"), spread(p.many.dials, "%.3f"), spread(p.one.dials, "%.3f"))
	fmt.Printf("  processors busy at %d homes %s; %d homes/one home if the tunnel's processes paid no more per request there than to one home: %s\n",
		vsFanHomes, spread(cores, "%.2f"), vsFanHomes, spread(bound, "%.2f"))
}

// bound is, round by round, how many processors the path kept busy at
// many homes, and the ratio many homes/one home it would reach if its
// tunnel processes cost no more per request at many homes than at one:
// while the processors are all busy, the rate goes as the inverse of the
// CPU all processes spend per request, and what the others (HAProxy, the
// clients and web server) spend more at many homes stays.
func (p fanPath) bound() (cores, ratio []float64) {
	for r := range p.many.rates {
		var total, excess float64
		for i, proc := range p.procs {
			many, one := p.many.cpu[i][r], p.one.cpu[i][r]
			total += many
			if proc.tunnel && many > one {
				excess += many - one
			}
		}
		cores = append(cores, total*p.many.rates[r]/1e6)
		ratio = append(ratio, p.many.rates[r]*total/(total-excess)/p.one.rates[r])
	}
	return cores, ratio
}

func fanClient(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns: 1000, MaxIdleConnsPerHost: vsFanConc,
	}}
}

func fanGet(client *http.Client, host string) error {
	resp, err := client.Get("http://" + host + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		return fmt.Errorf("%s: %d %q", host, resp.StatusCode, body)
	}
	return nil
}

// fanRate runs vsFanConc clients for vsFanTime, request i going to
// hosts[i % len(hosts)]; it returns requests/s and the p99 in ms.
func fanRate(addr string, hosts []string) (float64, float64) {
	client := fanClient(addr) // keep-alive to HAProxy, as browsers do
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	var samples []time.Duration
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(vsFanTime)
	for range vsFanConc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(end) {
				host := hosts[int(next.Add(1))%len(hosts)]
				t0 := time.Now()
				if fanGet(client, host) != nil {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		fmt.Printf("fan-out: %d requests failed\n", n)
	}
	if len(samples) == 0 {
		return 0, 0
	}
	slices.Sort(samples)
	return float64(len(samples)) / elapsed.Seconds(), float64(samples[len(samples)*99/100].Microseconds()) / 1000
}

// vsFanHomes is the number of homes of the fan-out figure (in one agent
// process): 500, or HOMEPORT_BENCH_FAN_HOMES (1 measures HTTP through a
// one-home agent).
var vsFanHomes = func() int {
	if v, err := strconv.Atoi(os.Getenv("HOMEPORT_BENCH_FAN_HOMES")); err == nil && v > 0 {
		return v
	}
	return 500
}()

func median(vals []float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[len(s)/2]
}
