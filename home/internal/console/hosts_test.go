package console

import "testing"

// TestHostsAllows: Host names and Origins the console accepts, for a
// console on 0.0.0.0:8001 with console.allowed_hosts [nas.lan].
func TestHostsAllows(t *testing.T) {
	h := newHosts("0.0.0.0", "8001", []string{"nas.lan"})
	for host, want := range map[string]bool{
		"127.0.0.1:8001": true, "localhost:8001": true, "[::1]:8001": true, "192.168.1.10:8001": true,
		"nas.lan": true, "nas.lan:443": true, "NAS.lan:8001": true,
		"evil.example:8001": false, "localhost:8002": false, "127.0.0.1": false, "localhost.:8001": false,
		"nas.lan.evil.example:8001": false, "": false, "[::1]": false,
	} {
		if got := h.allows(host, "80"); got != want {
			t.Errorf("allows(%q) = %v, want %v", host, got, want)
		}
	}
	for u, want := range map[string]bool{
		"http://127.0.0.1:8001": true, "http://localhost:8001/page": true, "https://nas.lan": true, "http://[::1]:8001": true,
		"http://192.168.1.10:8001": true, // the request's own host
		"null":                     false, "http://localhost": false, "file:///tmp/x.html": false, "http://evil.example:8001": false,
		"http://192.0.2.66:8001": false, "http://127.0.0.1:8002": false,
	} {
		if got := h.allowsOrigin("192.168.1.10:8001", u); got != want {
			t.Errorf("allowsOrigin(%q) = %v, want %v", u, got, want)
		}
	}
}
