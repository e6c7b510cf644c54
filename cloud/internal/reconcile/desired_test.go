package reconcile

import (
	"reflect"
	"testing"

	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
)

func ptr[T any](v T) *T { return &v }

func TestDesiredRoutesOnlyPublicMappings(t *testing.T) {
	got := Desired([]store.Mapping{
		{Scheme: "https", Host: ptr("app.example.com"), TunnelPort: 20000, ProxyProtocol: true},
		{Scheme: "http", Host: ptr("app.example.com"), TunnelPort: 20001, ProxyProtocol: true},
		{Scheme: "tcp", PublicPort: ptr(10001), TunnelPort: 20002, ProxyProtocol: true},
		{Scheme: "tcp", Private: true, TunnelPort: 20003},
		{Scheme: "https", Host: ptr("gpu.example.com"), Private: true, TunnelPort: 20004, ProxyProtocol: true},
		// proxy_protocol off (plain `ssh -R` targets): routed, and listed raw.
		{Scheme: "https", Host: ptr("raw.example.com"), TunnelPort: 20005},
		{Scheme: "http", Host: ptr("raw.example.com"), TunnelPort: 20006},
		{Scheme: "tcp", PublicPort: ptr(10002), TunnelPort: 20007},
	})
	want := State{
		haproxy.MapHTTPS: {"app.example.com": "20000", "raw.example.com": "20005"},
		haproxy.MapHTTP:  {"app.example.com": "20001", "raw.example.com": "20006"},
		haproxy.MapTCP:   {"10001": "20002", "10002": "20007"},
		haproxy.MapRaw:   {"20005": "20005", "20006": "20006", "20007": "20007"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Desired = %v, want %v", got, want)
	}
}

func TestDiffAndReport(t *testing.T) {
	live := State{
		haproxy.MapHTTPS: {"a.example.com": "20000", "stale.example.com": "20005"},
		haproxy.MapHTTP:  {"b.example.com": "20009"},
		haproxy.MapTCP:   {},
		haproxy.MapRaw:   {"20009": "20009"},
	}
	desired := State{
		haproxy.MapHTTPS: {"a.example.com": "20000"},
		haproxy.MapHTTP:  {"b.example.com": "20001"},
		haproxy.MapTCP:   {"10001": "20002"},
		haproxy.MapRaw:   {"20002": "20002"},
	}
	ops := Diff(live, desired)
	want := []Op{
		{Map: haproxy.MapHTTP, Key: "b.example.com", Value: "20001", Had: true},
		{Map: haproxy.MapHTTPS, Key: "stale.example.com", Had: true},
		{Map: haproxy.MapRaw, Key: "20002", Value: "20002"},
		{Map: haproxy.MapRaw, Key: "20009", Had: true},
		{Map: haproxy.MapTCP, Key: "10001", Value: "20002"},
	}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("Diff = %+v\nwant %+v", ops, want)
	}
	if ops := Diff(desired, desired); len(ops) != 0 {
		t.Errorf("Diff of equal states = %+v", ops)
	}
	drift := map[string]string{}
	for _, r := range Report(live, desired) {
		drift[r.Map+" "+r.Key] = r.Drift
	}
	wantDrift := map[string]string{
		"https a.example.com": "", "https stale.example.com": "unexpected",
		"http b.example.com": "wrong_port", "tcp 10001": "missing",
		"raw 20002": "missing", "raw 20009": "unexpected",
	}
	if !reflect.DeepEqual(drift, wantDrift) {
		t.Errorf("Report drift = %v, want %v", drift, wantDrift)
	}
}

func TestTouchedNamesTheRouteAndTheRawEntry(t *testing.T) {
	got := Touched(
		store.Mapping{Scheme: "https", Host: ptr("app.example.com"), TunnelPort: 20000},
		store.Mapping{Scheme: "tcp", PublicPort: ptr(10001), TunnelPort: 20002},
		store.Mapping{Scheme: "tcp", Private: true, TunnelPort: 20003}, // never routed
	)
	want := []Key{
		{haproxy.MapHTTPS, "app.example.com"}, {haproxy.MapRaw, "20000"},
		{haproxy.MapTCP, "10001"}, {haproxy.MapRaw, "20002"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Touched = %v, want %v", got, want)
	}
}
