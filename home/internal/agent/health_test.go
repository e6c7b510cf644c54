package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// TestForwardStatusNamesTheFailingLayer: a forward is up only when the
// cloud has its mapping, its port is bound on the live connection and the
// local service answers; otherwise the first layer that fails is named, in
// words, with its time.
func TestForwardStatusNamesTheFailingLayer(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := store.Entry{ID: 1, Scheme: "http", Host: "web.example.com", Target: "127.0.0.1:3000", Enabled: true, MappingID: 7, TunnelPort: 20007}
	var has, lacks mappingCheck
	has.apply(t0, []proto.Mapping{{ID: 7}}, nil, []store.Entry{e})
	lacks.apply(t0, nil, nil, []store.Entry{e})
	bound := tunnel.Status{State: tunnel.StateConnected, Since: t0, Forwards: []tunnel.ForwardStatus{{TunnelPort: 20007, Up: true, Since: t0}}}
	refused := tunnel.Status{State: tunnel.StateConnected, Since: t0, Forwards: []tunnel.ForwardStatus{{TunnelPort: 20007, Since: t0, LastError: errors.New("the cloud refused to forward tunnel port 20007")}}}
	lost := tunnel.Status{State: tunnel.StateBackoff, Since: t0, LastError: errors.New("connection lost: EOF"), Forwards: []tunnel.ForwardStatus{{TunnelPort: 20007}}}
	listening := map[string]localState{"127.0.0.1:3000": {up: true, since: t0}}
	silent := map[string]localState{"127.0.0.1:3000": {since: t0}}
	closed, disconnected, unmapped, refusedSync := e, e, e, e
	closed.Enabled = false
	disconnected.Disconnected, disconnected.TunnelPort, disconnected.MappingID = true, 0, 0
	unmapped.TunnelPort, unmapped.MappingID = 0, 0
	refusedSync.TunnelPort, refusedSync.MappingID, refusedSync.SyncError = 0, 0, "host is not under any base domain"
	tests := []struct {
		name  string
		e     store.Entry
		l     layers
		state string
		why   string
	}{
		{"up", e, layers{mappings: &has, running: true, tunnel: bound, local: listening}, control.ForwardUp, ""},
		{"closed", closed, layers{mappings: &has, running: true, tunnel: bound, local: listening}, control.ForwardClosed, "closed"},
		{"deleted in the cloud", e, layers{mappings: &lacks, running: true, tunnel: bound, local: listening}, control.ForwardNoMapping, "the cloud has no mapping for it (deleted in the web UI?)"},
		{"never checked counts as mapped", e, layers{mappings: &mappingCheck{}, running: true, tunnel: bound, local: listening}, control.ForwardUp, ""},
		{"disconnected", disconnected, layers{mappings: &has, running: true, tunnel: bound, local: listening}, control.ForwardNoMapping, "sync-tunnels --disconnect"},
		{"not synced", unmapped, layers{mappings: &has, running: true, tunnel: bound, local: listening}, control.ForwardNoMapping, "not mapped in the cloud yet"},
		{"sync refused", refusedSync, layers{mappings: &has, running: true, tunnel: bound, local: listening}, control.ForwardNoMapping, "the cloud did not map it: host is not under"},
		{"no agent", e, layers{mappings: &has, tunnelWhy: whyNoAgent, local: listening}, control.ForwardNotBound, "no console"},
		{"tunnel lost", e, layers{mappings: &has, running: true, tunnel: lost, local: listening}, control.ForwardNotBound, "the tunnel is not connected (backoff: connection lost: EOF)"},
		{"forward refused", e, layers{mappings: &has, running: true, tunnel: refused, local: listening}, control.ForwardNotBound, "refused to forward tunnel port 20007"},
		{"local service down", e, layers{mappings: &has, running: true, tunnel: bound, local: silent}, control.ForwardLocalDown, "nothing answers on 127.0.0.1:3000"},
		{"mapping first", e, layers{mappings: &lacks, running: true, tunnel: lost, local: silent}, control.ForwardNoMapping, "no mapping"},
	}
	for _, tt := range tests {
		f := forwardStatus(tt.e, tt.l)
		if f.State != tt.state || f.Up != (tt.state == control.ForwardUp) || (tt.why == "") != (f.Error == "") || !strings.Contains(f.Error, tt.why) {
			t.Errorf("%s: state %q up %v error %q; want %q, %q", tt.name, f.State, f.Up, f.Error, tt.state, tt.why)
		}
		if f.Since.IsZero() && (tt.state == control.ForwardUp || tt.state == control.ForwardLocalDown || tt.name == "deleted in the cloud" || tt.name == "tunnel lost") {
			t.Errorf("%s: no time", tt.name)
		}
	}
}

// TestMappingCheckKeepsTheTimeAMappingWentMissing: the time a mapping was
// first seen missing stays across checks; an answer to a request sent
// before the one recorded is dropped (a sync made mappings since).
func TestMappingCheckKeepsTheTimeAMappingWentMissing(t *testing.T) {
	es := []store.Entry{{MappingID: 7, TunnelPort: 20007}}
	var m mappingCheck
	t0 := time.Now()
	m.apply(t0, nil, nil, es)
	first := m.missing[7]
	m.apply(t0.Add(time.Second), nil, nil, es)
	if ok, since := m.has(7); ok || !since.Equal(first) {
		t.Fatalf("missing twice: has %v since %v, want the first time %v", ok, since, first)
	}
	m.apply(t0.Add(3*time.Second), []proto.Mapping{{ID: 7}}, nil, es)
	m.apply(t0.Add(2*time.Second), nil, nil, es) // older request, answered late
	if ok, _ := m.has(7); !ok {
		t.Fatal("a late answer to an older request overwrote a newer one")
	}
	m.apply(t0.Add(4*time.Second), nil, errors.New("connection refused"), es)
	if ok, _ := m.has(7); !ok || m.err == nil || m.errAt.IsZero() {
		t.Fatalf("a failed check: has %v err %v at %v; want the last answer kept and the failure timed", ok, m.err, m.errAt)
	}
}
