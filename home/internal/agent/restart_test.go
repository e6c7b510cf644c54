package agent_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/control"
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
		e.start(t, agent.Options{})
		answered := false
		for deadline := time.Now().Add(10 * time.Second); !answered && time.Now().Before(deadline); {
			select {
			case <-e.ran:
				t.Fatalf("agent %d of 5 stopped at once: %v", i+1, e.runErr)
			default:
			}
			_, err := control.NewClient(sock).Status(context.Background())
			if answered = err == nil; !answered {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if !answered {
			t.Fatalf("agent %d of 5 never answered on %s", i+1, sock)
		}
		e.stop()
		if e.runErr != nil {
			t.Fatalf("agent %d of 5: Run = %v", i+1, e.runErr)
		}
		if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("agent %d of 5 returned from Run with its socket still there (%v)", i+1, err)
		}
		if _, err := control.NewClient(sock).Status(context.Background()); err == nil {
			t.Fatalf("agent %d of 5 returned from Run and something still answers on its socket", i+1)
		}
	}
}
