package main

import (
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/store"
)

// `home status` warns for each open https entry that terminates TLS while
// its certificate is not in service, with the reason, and for nothing else.
func TestStatusWarnsOfPendingCertificates(t *testing.T) {
	now := time.Now()
	es := []store.Entry{
		{Scheme: "https", Host: "new.test", Mode: store.ModeTerminate, Enabled: true},
		{Scheme: "https", Host: "failing.test", Mode: store.ModeTerminate, Enabled: true},
		{Scheme: "https", Host: "ok.test", Mode: store.ModeTerminate, Enabled: true},
		{Scheme: "https", Host: "closed.test", Mode: store.ModeTerminate, Enabled: false},
		{Scheme: "https", Host: "own.test", Mode: store.ModePassthrough, Enabled: true},
		{Scheme: "http", Host: "plain.test", Enabled: true},
	}
	infos := []certs.Info{
		{Domain: "failing.test", State: certs.Failed, Error: "acme: unauthorized"},
		{Domain: "ok.test", State: certs.Valid, NotAfter: now.Add(24 * time.Hour)},
	}
	var b strings.Builder
	printPending(&b, es, infos, now)
	out := b.String()
	const notice = ": certificate pending: visitors see a TLS error until it is issued ("
	for _, want := range []string{
		"https://new.test" + notice + "none obtained yet",
		"https://failing.test" + notice + "the last attempt failed: acme: unauthorized",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "certificate pending"); n != 2 {
		t.Errorf("%d pending lines, want 2 (valid, closed, passthrough and http entries need none):\n%s", n, out)
	}
}
