package serve_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/proto"
)

// TestChurnIsNoDriftButAnOutsideChangeIsRepaired: homes create and delete
// mappings concurrently while full reconciles run (the periodic one, and
// more, as an admin's "reconcile now" would). Nothing but the cloud touches
// HAProxy, so homeport_haproxy_repairs_total must stay 0: it used to count
// every change committed but not yet pushed as "repaired drift". Then an
// entry deleted behind the cloud's back (through the admin socket) is
// repaired and counted.
func TestChurnIsNoDriftButAnOutsideChangeIsRepaired(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--reconcile-interval", "1s"}})
	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	if st := api(t, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "churn.example"}, nil); st != 201 {
		t.Fatalf("base domain: %d", st)
	}
	ctx := context.Background()
	const workers, pairs = 4, 40
	var churn, fulls sync.WaitGroup
	done := make(chan struct{})
	var passes atomic.Int64
	fulls.Add(1)
	go func() { // full passes all along the churn
		defer fulls.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.App.Routes.Full(ctx); err != nil {
				t.Error(err)
				return
			}
			passes.Add(1)
		}
	}()
	for w := 0; w < workers; w++ {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; i < pairs; i++ {
				m, err := c.App.Mappings.Create(ctx, h.Home, proto.MappingRequest{Scheme: proto.SchemeHTTP, Host: fmt.Sprintf("w%d-%d.churn.example", w, i)})
				if err != nil {
					t.Error(err)
					return
				}
				if err := c.App.Mappings.Delete(ctx, h.Home, m.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	churn.Wait()
	close(done)
	fulls.Wait()
	if passes.Load() < 3 {
		t.Fatalf("only %d full passes ran during the churn: the test proves nothing", passes.Load())
	}
	if n := repairs(t, c); n != 0 {
		t.Errorf("homeport_haproxy_repairs_total = %v after churn alone, want 0 (nothing outside the cloud touched HAProxy)", n)
	}
	rep, err := c.App.Routes.Routes(ctx)
	if err != nil || !rep.InSync {
		t.Fatalf("after churn: in sync %v, %v, %+v", rep.InSync, err, rep.Routes)
	}

	// Something outside the cloud deletes a live route.
	var m proto.Mapping
	if st := api(t, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "stays.churn.example"}, &m); st != 201 {
		t.Fatalf("mapping: %d", st)
	}
	mapFile := haproxy.MapPath(c.App.Config.HAProxyMapDir(), haproxy.MapHTTP)
	if out, err := socat(c.App.Config.HAProxySocketPath(), "del map "+mapFile+" stays.churn.example\n"); err != nil {
		t.Fatalf("socat: %v %s", err, out)
	}
	want := fmt.Sprintf("{stays.churn.example %d}", m.TunnelPort)
	for deadline := time.Now().Add(10 * time.Second); repairs(t, c) < 1 || !strings.Contains(showMaps(t, c), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the deleted entry was not repaired within 10s: repairs %v, maps:\n%s", repairs(t, c), showMaps(t, c))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := repairs(t, c); n != 1 {
		t.Errorf("homeport_haproxy_repairs_total = %v, want 1 (the one entry deleted behind the cloud's back)", n)
	}
}
