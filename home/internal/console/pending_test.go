package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"homeport.dev/home/internal/store"
)

// TestConsoleWarnsOfAPendingCertificate: an open https entry that
// terminates TLS and has no certificate yet is flagged on the dashboard:
// its visitors see a TLS error until one is issued, and why; a passthrough
// entry (the local service's own certificate) is not.
func TestConsoleWarnsOfAPendingCertificate(t *testing.T) {
	s := startSite(t, siteOptions{})
	ctx := context.Background()
	for _, e := range []store.Entry{
		{Scheme: "https", Host: "app.example.com", Target: "127.0.0.1:3000", Mode: store.ModeTerminate, Enabled: true},
		{Scheme: "https", Host: "own.example.com", Target: "127.0.0.1:3443", Mode: store.ModePassthrough, Enabled: true},
	} {
		if err := s.a.DB.Add(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	page := s.browser().get("/", nil)
	if page.status != http.StatusOK {
		t.Fatalf("dashboard: %d %s", page.status, page.body)
	}
	want := `data-cert-pending="app.example.com">https://app.example.com: certificate pending: visitors see a TLS error until it is issued (`
	if !strings.Contains(page.body, want) {
		t.Errorf("the dashboard does not warn of app.example.com's pending certificate:\n%s", page.body)
	}
	if strings.Contains(page.body, `data-cert-pending="own.example.com"`) {
		t.Error("a passthrough entry is warned of a certificate it does not need")
	}
}
