package serve_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/budget"
	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// openFDs counts this process's open file descriptors (the in-process
// cloud's, plus the test's own few).
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testnet.Missing(t, "no /proc/self/fd: cannot count file descriptors here")
	}
	return len(ents)
}

// TestOneHomeFloodingChannelsCannotTakeTheEdgeDown is the attack of the
// security review: one approved home opens thousands of direct-tcpip
// channels to its own private mapping, each of which the cloud used to pay
// for with two descriptors until it ran out and stopped accepting logins.
// Now the home's budget refuses the flood with a reason, the descriptors the
// cloud holds stay bounded, another home keeps connecting and serving
// visitors through HAProxy, the API keeps answering, and after the flood the
// descriptors return to where they were.
func TestOneHomeFloodingChannelsCannotTakeTheEdgeDown(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	// The victim: an HTTP mapping served through its tunnel.
	victim := c.NewHome(t, "victim")
	vtok := c.Token(t, victim.User)
	vbase := "/api/v1/homes/" + victim.Slug
	if st := api(t, c, vtok, "POST", vbase+"/base-domains", proto.BaseDomainRequest{Domain: "victim.example"}, nil); st != 201 {
		t.Fatalf("base domain: %d", st)
	}
	var web proto.Mapping
	if st := api(t, c, vtok, "POST", vbase+"/mappings", proto.MappingRequest{Scheme: "http", Host: "www.victim.example"}, &web); st != 201 {
		t.Fatalf("mapping: %d", st)
	}
	serveVictim := func() *ssh.Client {
		cl, err := c.Dial(victim)
		if err != nil {
			t.Fatalf("victim home cannot log in: %v", err)
		}
		cloudtest.Forward(t, cl, web.TunnelPort, func(raw net.Conn) {
			defer raw.Close()
			conn := proxyproto.NewConn(raw) // HAProxy's PROXY v2 header first
			br := bufio.NewReader(conn)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			}
		})
		return cl
	}
	vcl := serveVictim()
	defer func() { vcl.Close() }() // the client of the moment: it reconnects below
	visit := func() error {
		code, body, err := httpGet(c.HTTPAddr, "www.victim.example")
		if err == nil && (code != 200 || body != "hello") {
			err = fmt.Errorf("answer %d %q", code, body)
		}
		return err
	}
	eventuallyOK(t, 5*time.Second, "victim's route", visit)

	// The attacker: a private mapping of its own, forwarded, whose every
	// visitor it keeps open.
	attacker := c.NewHome(t, "mallory")
	atok := c.Token(t, attacker.User)
	var private proto.Mapping
	if st := api(t, c, atok, "POST", "/api/v1/homes/"+attacker.Slug+"/mappings", proto.MappingRequest{Name: "flood", Scheme: "tcp", Private: true}, &private); st != 201 {
		t.Fatalf("private mapping: %d", st)
	}
	acl, err := c.Dial(attacker)
	if err != nil {
		t.Fatal(err)
	}
	defer acl.Close()
	// Every visitor of the attacker's mapping is kept open until its far
	// end goes.
	cloudtest.Forward(t, acl, private.TunnelPort, func(conn net.Conn) { io.Copy(io.Discard, conn) })

	runtime.GC()
	base := openFDs(t)
	var peak atomic.Int64
	peak.Store(int64(base))
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(openFDs(t)); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	// The flood, bounded in count and time.
	const floodOpens = 3000
	var opened, refused atomic.Int64
	var refusalMsg atomic.Value // a refusal by the channel budget
	var rateRefused atomic.Int64
	var channels []net.Conn
	var chMu sync.Mutex
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < floodOpens/4 && time.Now().Before(deadline); i++ {
				ch, err := acl.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", private.TunnelPort))
				var oce *ssh.OpenChannelError
				switch {
				case err == nil:
					opened.Add(1)
					chMu.Lock()
					channels = append(channels, ch)
					chMu.Unlock()
				case errors.As(err, &oce) && oce.Reason == ssh.ResourceShortage:
					refused.Add(1)
					if strings.Contains(oce.Message, "per second") {
						rateRefused.Add(1)
					} else {
						refusalMsg.Store(oce.Message)
					}
				default:
					t.Errorf("flood: unexpected error %v", err)
					return
				}
			}
		}()
	}

	// Meanwhile the rest of the edge works: visitors reach the victim, the
	// victim reconnects (a new login and its forward), the API answers.
	var during []error
	for i := 0; i < 20; i++ {
		if err := visit(); err != nil {
			during = append(during, fmt.Errorf("visit %d: %w", i, err))
		}
	}
	vcl.Close()
	vcl = serveVictim()
	eventuallyOK(t, 10*time.Second, "victim's route after its reconnect, during the flood", visit)
	if code, _, err := get(c.APIURL + "/readyz"); err != nil || code != 200 {
		during = append(during, fmt.Errorf("/readyz = %d, %v", code, err))
	}
	wg.Wait()
	for i := 0; i < 5; i++ {
		if err := visit(); err != nil {
			during = append(during, fmt.Errorf("visit after the flood's opens %d: %w", i, err))
		}
	}
	close(stopSampling)
	<-sampled
	for _, err := range during {
		t.Error(err)
	}
	perHome := budget.DefaultChannelsPerHome
	t.Logf("flood: %d channels opened, %d refused (%d by the open rate; %v); descriptors: %d before, peak %d",
		opened.Load(), refused.Load(), rateRefused.Load(), refusalMsg.Load(), base, peak.Load())
	if opened.Load() > int64(perHome) {
		t.Errorf("the attacker opened %d channels; its budget is %d", opened.Load(), perHome)
	}
	if rateRefused.Load() == 0 {
		t.Error("no channel open was refused by the open rate")
	}
	if refused.Load() == 0 {
		t.Error("no channel open was refused")
	} else if msg, _ := refusalMsg.Load().(string); !strings.Contains(msg, "channels open") {
		t.Errorf("refusal reason %q does not say which limit", msg)
	}
	// A channel costs the cloud at most two descriptors (the dial and the
	// tunnel port's accepted end); the rest is the victim's traffic.
	if grew := int(peak.Load()) - base; grew > 2*perHome+64 {
		t.Errorf("descriptors grew by %d during the flood; the attacker's budget allows %d", grew, 2*perHome)
	}

	// After the flood, descriptors return near the baseline.
	acl.Close()
	chMu.Lock()
	for _, ch := range channels {
		ch.Close()
	}
	chMu.Unlock()
	eventuallyOK(t, 10*time.Second, "descriptors back near the baseline", func() error {
		if n := openFDs(t); n > base+16 {
			return fmt.Errorf("%d open, %d before the flood", n, base)
		}
		return nil
	})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("after the flood: heap in use %d KiB", ms.HeapInuse>>10)
}

func get(url string) (int, string, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// eventuallyOK polls f every 20 ms until it returns nil or d passes.
func eventuallyOK(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: %v (waited %v)", what, err, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
