package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/vishvananda/netlink"
	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/shaper"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// netnsEnv names the test a child process runs inside its own network
// namespace.
const netnsEnv = "HOMEPORT_TEST_NETNS"

// inNetns re-runs the calling test in a child process inside a network
// namespace of its own (CLONE_NEWNET) with its loopback up, so the cloud,
// HAProxy and every tc change stay there, away from the host's interfaces.
// It returns true in the child; in the parent it runs the child, passes its
// output on and returns false. Without root the test is skipped.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("loopback of the test's namespace: %v", err)
		}
		return true
	}
	testnet.RequireRoot(t, "runs a cloud that shapes the loopback of a network namespace of its own")
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	// The child's skips are counted once, here.
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name(), testnet.SkipLogEnv+"=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if m := regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: (.*)\n--- SKIP: `).FindSubmatch(out); m != nil && err == nil {
		// Root, so only a missing program can have made it skip.
		testnet.Missing(t, strings.TrimPrefix(string(m[1]), testnet.SkipPrefix))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the test failed in its network namespace: %v", err)
	}
	return false
}

// bulkHome is a home connected to the cloud over SSH, forwarding one tunnel
// port to a bulk server: after the PROXY header, 'D' gets an endless
// download, 'U' starts an upload whose bytes the home counts.
type bulkHome struct {
	cloudtest.Home
	token    string
	mapping  proto.Mapping
	uploaded atomic.Int64
}

func connectBulkHome(t *testing.T, c *cloudtest.Cloud, user string) *bulkHome {
	t.Helper()
	h := &bulkHome{Home: c.NewHome(t, user)}
	h.token = c.Token(t, h.User)
	if st := api(t, c, h.token, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.First}, &h.mapping); st != 201 {
		t.Fatalf("tcp mapping: %d", st)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", c.SSHAddr, &ssh.ClientConfig{
		User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ln, err := client.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.mapping.TunnelPort))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go h.serve(conn)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !c.App.SSH.ForwardUp(h.ID, h.mapping.TunnelPort) {
		if time.Now().After(deadline) {
			t.Fatal("forward never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

func (h *bulkHome) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	if _, err := proxyproto.Read(br); err != nil {
		return
	}
	cmd, err := br.ReadByte()
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	switch cmd {
	case 'D':
		for {
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	case 'U':
		for {
			n, err := br.Read(buf)
			h.uploaded.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

// flow is one visitor's bulk transfer through HAProxy's public port.
type flow struct {
	conn  net.Conn
	bytes *atomic.Int64 // what the receiving side has read
}

// start opens a download ('D': the visitor counts) or an upload ('U': the
// home counts) through the home's public TCP port.
func (h *bulkHome) start(t *testing.T, c *cloudtest.Cloud, dir byte) flow {
	t.Helper()
	host, _, _ := net.SplitHostPort(c.HTTPSAddr)
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(h.mapping.PublicPort)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte{dir}); err != nil {
		t.Fatal(err)
	}
	f := flow{conn: conn, bytes: &h.uploaded}
	if dir == 'D' {
		f.bytes = new(atomic.Int64)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := conn.Read(buf)
				f.bytes.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	} else {
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := conn.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	return f
}

// measure runs flows together: a warm-up (TCP ramps up, the HTB bucket
// empties), then the receivers' rate over window, in Mbit/s.
func measure(flows ...flow) []float64 {
	const warmUp, window = time.Second, 3 * time.Second
	defer func() {
		for _, f := range flows {
			f.conn.Close()
		}
	}()
	time.Sleep(warmUp)
	start := make([]int64, len(flows))
	for i, f := range flows {
		start[i] = f.bytes.Load()
	}
	t0 := time.Now()
	time.Sleep(window)
	secs := time.Since(t0).Seconds()
	out := make([]float64, len(flows))
	for i, f := range flows {
		out[i] = float64(f.bytes.Load()-start[i]) * 8 / secs / 1e6
	}
	return out
}

func within(t *testing.T, what string, got, limitMbps float64) {
	t.Helper()
	if got < 0.9*limitMbps || got > 1.1*limitMbps {
		t.Errorf("%s: %.2f Mbit/s, want %.0f Mbit/s ± 10%%", what, got, limitMbps)
	} else {
		t.Logf("%s: %.2f Mbit/s (limit %.0f)", what, got, limitMbps)
	}
}

// TestBandwidthLimitsThroughThePublicPort drives bulk traffic the way
// visitors do: public TCP port -> HAProxy -> tunnel port -> SSH -> home, in
// a network namespace whose loopback the cloud shapes. Two homes limited to
// 5 and 50 Mbit/s hold their limits in both directions while a third,
// unlimited home keeps its full speed at the same time; clearing a limit
// gives full speed back.
func TestBandwidthLimitsThroughThePublicPort(t *testing.T) {
	if !inNetns(t) {
		return
	}
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Slots: 4, Args: []string{
		"--tunnel-port-base", "20000", "--tcp-ports", "10000-10007", // clear of the ephemeral ports HAProxy dials from
		"--shape-dev", "lo", // this test's own network namespace
	}})
	slow, fast, free := connectBulkHome(t, c, "alice"), connectBulkHome(t, c, "bob"), connectBulkHome(t, c, "carol")

	full := measure(free.start(t, c, 'D'))[0]
	t.Logf("unlimited download alone: %.0f Mbit/s", full)
	if full < 500 {
		t.Fatalf("an unlimited download makes only %.0f Mbit/s: too slow to tell shaping apart", full)
	}

	for h, kbps := range map[*bulkHome]int{slow: 5000, fast: 50000} {
		if st := api(t, c, h.token, "PATCH", "/api/v1/homes/"+h.Slug, map[string]any{"bandwidth_limit_kbps": kbps}, nil); st != 200 {
			t.Fatalf("PATCH limit %d: %d", kbps, st)
		}
	}
	for _, dir := range []byte{'D', 'U'} {
		name := map[byte]string{'D': "download", 'U': "upload"}[dir]
		got := measure(slow.start(t, c, dir), fast.start(t, c, dir), free.start(t, c, dir))
		within(t, "5 Mbit/s home, "+name, got[0], 5)
		within(t, "50 Mbit/s home, "+name, got[1], 50)
		fullSpeed(t, "unlimited home, "+name+" beside the limited ones", got[2], full)
	}

	if st := api(t, c, slow.token, "PATCH", "/api/v1/homes/"+slow.Slug, map[string]any{"bandwidth_limit_kbps": nil}, nil); st != 200 {
		t.Fatalf("PATCH null: %d", st)
	}
	fullSpeed(t, "after clearing the limit", measure(slow.start(t, c, 'D'))[0], full)
}

// fullSpeed checks that an unshaped flow runs at full speed: at least a
// third of the same path alone (other test packages may share the CPU),
// and ten times the highest limit, which a shaped flow never reaches.
func fullSpeed(t *testing.T, what string, got, alone float64) {
	t.Helper()
	if got < alone/3 || got < 500 {
		t.Errorf("%s: %.0f Mbit/s, want full speed (%.0f alone)", what, got, alone)
	} else {
		t.Logf("%s: %.0f Mbit/s (%.0f%% of the flow alone)", what, got, 100*got/alone)
	}
}

// limitsInKernel reads the classes of homeport's root qdisc on lo: handle
// -> rate in kbit/s.
func limitsInKernel(t *testing.T) map[uint32]int64 {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := netlink.ClassList(lo, shaper.Root())
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]int64{}
	for _, c := range cs {
		if htb, ok := c.(*netlink.HtbClass); ok && htb.Handle>>16 == shaper.Root()>>16 {
			out[htb.Handle] = int64(htb.Rate) * 8 / 1000
		}
	}
	return out
}

// leavesInKernel counts the u32 filters that select slot's class.
func leavesInKernel(t *testing.T, slot int) int {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := netlink.FilterList(lo, shaper.Root())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if u, ok := f.(*netlink.U32); ok && u.ClassId == shaper.ClassID(slot) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLimitsSurviveRestartsRepairDriftAndLeaveWithTheHome checks the
// kernel's state through the cloud's life: limits come back at start
// without any API call, drift is repaired by the periodic reconcile, a bad
// PATCH changes nothing, and a released home's class and filters are gone.
func TestLimitsSurviveRestartsRepairDriftAndLeaveWithTheHome(t *testing.T) {
	if !inNetns(t) {
		return
	}
	// lo of this test's own network namespace carries the tunnel traffic.
	c := cloudtest.Start(t, cloudtest.Options{Args: []string{"--reconcile-interval", "1s", "--shape-dev", "lo"}})
	a, b := c.NewHome(t, "alice"), c.NewHome(t, "bob")
	tokA, tokB := c.Token(t, a.User), c.Token(t, b.User)
	if len(limitsInKernel(t)) != 0 {
		t.Fatal("classes before any limit")
	}
	api(t, c, tokA, "PATCH", "/api/v1/homes/"+a.Slug, map[string]any{"bandwidth_limit_kbps": 5000}, nil)
	api(t, c, tokB, "PATCH", "/api/v1/homes/"+b.Slug, map[string]any{"bandwidth_limit_kbps": 50000}, nil)
	classA, classB := shaper.ClassID(a.Slot), shaper.ClassID(b.Slot)
	want := map[uint32]int64{classA: 5000, classB: 50000}
	if got := limitsInKernel(t); fmt.Sprint(got) != fmt.Sprint(want) || leavesInKernel(t, a.Slot) != 2 {
		t.Fatalf("after PATCH: classes %v, %d filters for home a; want %v and 2", got, leavesInKernel(t, a.Slot), want)
	}

	// Bad limits are refused and the kernel keeps the old one.
	for _, body := range []string{`{"bandwidth_limit_kbps": 99}`, `{"bandwidth_limit_kbps": 10000001}`,
		`{"bandwidth_limit_kbps": -5}`, `{"bandwidth_limit_kbps": "fast"}`, `{"bandwidth_limit_kbps": "5000"}`} {
		if st := api(t, c, tokA, "PATCH", "/api/v1/homes/"+a.Slug, json.RawMessage(body), nil); st != 400 {
			t.Errorf("PATCH %s = %d, want 400", body, st)
		}
	}
	if got := limitsInKernel(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after refused PATCHes: %v, want %v", got, want)
	}

	// A reboot loses the kernel's state: the next start restores it.
	c.Stop()
	lo, _ := netlink.LinkByName("lo")
	if err := netlink.QdiscDel(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: shaper.Root(), Parent: netlink.HANDLE_ROOT})); err != nil {
		t.Fatal(err)
	}
	c = c.Restart(t)
	if got := limitsInKernel(t); fmt.Sprint(got) != fmt.Sprint(want) || leavesInKernel(t, b.Slot) != 2 {
		t.Fatalf("after restart: classes %v; want %v", got, want)
	}

	// Someone deletes a class (and, as tc requires, its filters) behind the
	// cloud's back: the periodic reconcile puts it back and counts it.
	for _, f := range mustFilters(t, lo, b.Slot) {
		if err := netlink.FilterDel(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := netlink.ClassDel(&netlink.HtbClass{ClassAttrs: netlink.ClassAttrs{LinkIndex: lo.Attrs().Index, Parent: shaper.Root(), Handle: classB}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drift repaired", func() bool { return limitsInKernel(t)[classB] == 50000 && leavesInKernel(t, b.Slot) == 2 })
	if m := metric(t, c, "homeport_shaper_repairs_total"); m < 3 {
		t.Errorf("repairs metric = %v, want the class and both filters counted", m)
	}

	// Release: the home's class and filters go at once.
	if st := api(t, c, tokB, "DELETE", "/api/v1/homes/"+b.Slug, nil, nil); st != 204 {
		t.Fatalf("release: %d", st)
	}
	if got := limitsInKernel(t); fmt.Sprint(got) != fmt.Sprint(map[uint32]int64{classA: 5000}) || leavesInKernel(t, b.Slot) != 0 {
		t.Fatalf("after release: classes %v, %d filters left for the released home", got, leavesInKernel(t, b.Slot))
	}
}

func mustFilters(t *testing.T, lo netlink.Link, slot int) []netlink.Filter {
	t.Helper()
	fs, err := netlink.FilterList(lo, shaper.Root())
	if err != nil {
		t.Fatal(err)
	}
	var out []netlink.Filter
	for _, f := range fs {
		if u, ok := f.(*netlink.U32); ok && u.ClassId == shaper.ClassID(slot) {
			out = append(out, f)
		}
	}
	return out
}

// metric reads one unlabelled metric from /metrics.
func metric(t *testing.T, c *cloudtest.Cloud, name string) float64 {
	t.Helper()
	resp, err := http.Get(c.APIURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	var v float64
	fmt.Sscan(string(m[1]), &v)
	return v
}

// TestLimitsAreRefusedWhenNothingCanEnforceThem needs no namespace: a cloud
// that cannot shape never changes anything.
func TestLimitsAreRefusedWhenNothingCanEnforceThem(t *testing.T) {
	for dev, wantReady := range map[string]string{"hpnosuch0": "unavailable: ", shaper.Off: ""} {
		t.Run(dev, func(t *testing.T) {
			c := cloudtest.Start(t, cloudtest.Options{Args: []string{"--shape-dev", dev}})
			var health proto.Health
			resp, err := http.Get(c.APIURL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			if wantReady != "" && (resp.StatusCode != 503 || !strings.HasPrefix(health.Checks["shaper"], wantReady)) {
				t.Errorf("readyz = %d %+v, want 503 with shaper: %s...", resp.StatusCode, health, wantReady)
			}
			if wantReady == "" && health.Checks["shaper"] != "ok" {
				t.Errorf("readyz = %d %+v; shaping turned off is not a readiness problem", resp.StatusCode, health)
			}

			h := c.NewHome(t, "alice")
			tok := c.Token(t, h.User)
			var env proto.ErrorEnvelope
			st := api(t, c, tok, "PATCH", "/api/v1/homes/"+h.Slug, map[string]any{"bandwidth_limit_kbps": 5000}, &env)
			if st != 503 || env.Error.Code != proto.CodeUnavailable || env.Error.Field != "bandwidth_limit_kbps" ||
				!strings.Contains(env.Error.Message, "cannot be enforced") {
				t.Errorf("PATCH limit = %d %+v, want 503 unavailable explaining why", st, env.Error)
			}
			got, _ := c.App.Homes.GetAny(context.Background(), h.Slug)
			if got.BandwidthLimitKbps != nil {
				t.Errorf("the refused limit was stored: %d", *got.BandwidthLimitKbps)
			}
			if st := api(t, c, tok, "PATCH", "/api/v1/homes/"+h.Slug, map[string]any{"bandwidth_limit_kbps": nil}, nil); st != 200 {
				t.Errorf("clearing a limit = %d, want 200", st)
			}
		})
	}
}

// TestTheShaperTakesExactlyTheAPIsRange keeps the two validations together:
// the shaper refuses nothing the API accepts and nothing more.
func TestTheShaperTakesExactlyTheAPIsRange(t *testing.T) {
	for _, kbps := range []int64{homes.MinLimitKbps, homes.MaxLimitKbps} {
		if err := shaper.ValidateKbps(kbps); err != nil {
			t.Errorf("%d: %v", kbps, err)
		}
	}
	for _, kbps := range []int64{homes.MinLimitKbps - 1, homes.MaxLimitKbps + 1} {
		if shaper.ValidateKbps(kbps) == nil {
			t.Errorf("%d accepted by the shaper, refused by the API", kbps)
		}
	}
}

func TestShapeDevIsValidatedAtStart(t *testing.T) {
	dir := t.TempDir()
	for dev, want := range map[string]string{"": "lo", "eth0": "eth0", shaper.Off: shaper.Off} {
		args := []string{"--data", dir, "--haproxy", "off"}
		if dev != "" {
			args = append(args, "--shape-dev", dev)
		}
		cfg, err := config.Parse(args)
		if err != nil || cfg.ShapeDev != want {
			t.Errorf("--shape-dev %q: %q, %v; want %q", dev, cfg.ShapeDev, err, want)
		}
	}
	for _, dev := range []string{"", "eth0;reboot", "a/b", "lo ", "abcdefghijklmnop"} {
		if _, err := config.Parse([]string{"--data", dir, "--haproxy", "off", "--shape-dev", dev}); err == nil || !strings.Contains(err.Error(), "--shape-dev") {
			t.Errorf("--shape-dev %q: %v, want an error naming the flag", dev, err)
		}
	}
}
