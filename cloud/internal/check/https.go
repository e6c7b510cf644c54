package check

import (
	"fmt"
	"net"

	"homeport.dev/cloud/internal/config"
)

// clearText reports listeners that would carry credentials or the metrics
// of every home in clear beyond this machine.
func clearText(cfg config.Config) []Finding {
	var out []Finding
	if !loopback(cfg.APIAddr) {
		fix := "give the cloud a DNS name (--api-host) so it serves https://NAME itself (or --tls-cert/--tls-key), and keep --api-addr on 127.0.0.1"
		if cfg.TLS.On() {
			fix = fmt.Sprintf("drop --api-addr (with HTTPS on it defaults to 127.0.0.1:8000) or set it to 127.0.0.1:PORT; browsers and homes use https://%s", cfg.APIHost)
		}
		out = append(out, Finding{
			What: fmt.Sprintf("the web UI and API listen in clear (plain HTTP) on %s, reachable beyond this machine: passwords and tokens would cross the network unencrypted", cfg.APIAddr),
			Fix:  fix,
		})
	}
	if cfg.MetricsAddr != "" && !loopback(cfg.MetricsAddr) {
		out = append(out, Finding{
			What: fmt.Sprintf("/metrics is served without authentication on %s, reachable beyond this machine", cfg.MetricsAddr),
			Fix:  "set --metrics-addr 127.0.0.1:9100 (or a private address only the scraper reaches), or off",
		})
	}
	return out
}

// loopback reports whether a listen address accepts only this machine's
// connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
