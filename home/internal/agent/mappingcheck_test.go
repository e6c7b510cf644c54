package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/store"
)

// TestADeletedMappingShowsWithoutAsking: a mapping deleted in the cloud
// (the web UI, here its API) turns the running agent's forward from up to
// "the cloud has no mapping for it" within the check interval, with no
// `home status` or reload to ask (the forward stayed bound, so it used to
// say up while visitors got 503).
func TestADeletedMappingShowsWithoutAsking(t *testing.T) {
	e := newEnv(t, nil)
	o := agent.Options{MappingCheck: 200 * time.Millisecond}
	e.start(t, o)
	en := e.expose(t, "app.test", e.app, store.ModePassthrough)
	// Started again, so that no reload for the edit of config.yaml comes
	// after the deletion (a reload maps the entry again: the truth, but not
	// what this test looks at).
	e.start(t, o)
	e.waitForward(t, "app.test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.agent.Cloud.DeleteMapping(ctx, e.p.Cloud.Home, en.MappingID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.agent.Status()
		if len(st.Forwards) == 1 && st.Forwards[0].State == control.ForwardNoMapping {
			f := st.Forwards[0]
			if f.Up || f.CloudMapping || !f.Bound || !strings.Contains(f.Error, "the cloud has no mapping for it") || f.Since.IsZero() {
				t.Errorf("the forward whose mapping was deleted: %+v", f)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent still does not know 10 s after the mapping was deleted: %+v (mappings checked %s, %q)", st.Forwards, st.MappingsChecked, st.MappingsError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
