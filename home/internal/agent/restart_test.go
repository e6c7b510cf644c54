package agent_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/tunnel"
)

// TestAgentRestartedInProcessRuns stops an agent and starts another on the
// same profile right away, as the tests and any program embedding the
// agent do, five times: once Run has returned, nothing answers on the
// profile's control socket and its file is gone, so the next agent is not
// refused as a second one, and it answers on its own socket. Run used to
// return before the socket closed: under load the next agent found it
// still answering and stopped (TestCertificatesThroughTheTunnel failed
// that way in a CI run), and the first one's cleanup could remove the
// next one's socket file.
func TestAgentRestartedInProcessRuns(t *testing.T) {
	e := newEnv(t, nil)
	sock := e.p.SocketPath()
	for i := range 5 {
		p, err := config.Load(e.p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(p, e.db, agent.Options{Log: testLog(), Tunnel: tunnel.Config{MaxBackoff: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		answered := false
		for deadline := time.Now().Add(10 * time.Second); !answered && time.Now().Before(deadline); {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("agent %d of 5 stopped at once: %v", i+1, err)
			default:
			}
			_, err := control.NewClient(sock).Status(ctx)
			answered = err == nil
			if !answered {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if !answered {
			cancel()
			t.Fatalf("agent %d of 5 never answered on %s", i+1, sock)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("agent %d of 5: Run = %v", i+1, err)
		}
		if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("agent %d of 5 returned from Run with its socket still there (%v)", i+1, err)
		}
		if _, err := control.NewClient(sock).Status(context.Background()); err == nil {
			t.Fatalf("agent %d of 5 returned from Run and something still answers on its socket", i+1)
		}
	}
}
