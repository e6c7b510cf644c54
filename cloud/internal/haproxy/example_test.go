package haproxy_test

import (
	"context"
	"log"
	"log/slog"

	"homeport.dev/cloud/internal/haproxy"
)

// The cloud's wiring: render the config, write the routing state from the
// database, supervise haproxy, then change routes at run time and persist them.
func Example() {
	ctx := context.Background()
	p := haproxy.Params{
		HTTPAddr:    ":80",
		HTTPSAddr:   ":443",
		TCPPorts:    haproxy.PortRange{First: 10000, Last: 10999},
		TunnelPorts: haproxy.PortRange{First: 20000, Last: 20159},
		MapDir:      "/var/lib/homeport/haproxy",
		SocketPath:  "/run/homeport/haproxy.sock",
	}
	if err := haproxy.WriteConfig("/var/lib/homeport/haproxy/haproxy.cfg", p); err != nil {
		log.Fatal(err)
	}
	routes := map[haproxy.Map][]haproxy.Entry{
		haproxy.MapHTTPS: {{Key: "app.example.com", Value: "20001"}},
	}
	if err := haproxy.WriteMaps(p.MapDir, routes); err != nil {
		log.Fatal(err)
	}

	client := &haproxy.Client{SocketPath: p.SocketPath}
	proc := haproxy.NewProcess(haproxy.ProcessConfig{
		ConfigPath: "/var/lib/homeport/haproxy/haproxy.cfg",
		SocketPath: p.SocketPath,
		OnReady:    func(restarts int) { slog.Info("haproxy up; reconcile", "restarts", restarts) },
	})
	go proc.Run(ctx)
	if err := proc.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	// A new mapping: live first, then persisted for the next restart.
	https := haproxy.MapPath(p.MapDir, haproxy.MapHTTPS)
	if err := client.AddMap(ctx, https, "blog.example.com", "20002"); err != nil {
		log.Fatal(err)
	}
	routes[haproxy.MapHTTPS] = append(routes[haproxy.MapHTTPS], haproxy.Entry{Key: "blog.example.com", Value: "20002"})
	if err := haproxy.WriteMap(p.MapDir, haproxy.MapHTTPS, routes[haproxy.MapHTTPS]); err != nil {
		log.Fatal(err)
	}
}
