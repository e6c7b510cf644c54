package tunnel

import (
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/proto"
)

// ReplacedError ends a supervisor that the cloud told it was replaced: a
// newer login of the same home (another copy of the profile, on this
// machine or another) took the tunnel over. The supervisor stops instead
// of reconnecting, which would take the tunnel back and flap between the
// two copies every few seconds.
type ReplacedError struct {
	By    string    // the newer connection's address, as the cloud sees it
	Since time.Time // when it logged in
}

func (e *ReplacedError) Error() string {
	return fmt.Sprintf("this profile is running on %s since %s: another copy of it (a console or `home sync-tunnels --foreground`, here or on another machine) took the tunnel over, so this one stopped reconnecting; stop the other copy, then run `home sync-tunnels` here to take the tunnel back",
		e.By, e.Since.Format(time.RFC3339))
}

// noticeWatch holds the replaced notice of one connection, if the cloud
// sent one.
type noticeWatch struct {
	done chan struct{} // closed once the connection's requests have ended
	got  *ReplacedError
}

// watchReplaced passes the cloud's global requests on to the returned
// channel, for the SSH client (which refuses them, keepalives included, as
// OpenSSH does), except the replaced notice (proto.ReplacedRequest): that
// one is kept and acknowledged, so the cloud closes the connection at once.
// The notice can only come on a connection this supervisor still serves,
// and the supervisor dials its next connection only after closing this
// one: its own reconnect (a network blip) is never taken for another copy.
func watchReplaced(in <-chan *ssh.Request) (<-chan *ssh.Request, *noticeWatch) {
	out := make(chan *ssh.Request, cap(in))
	w := &noticeWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(out)
		for req := range in {
			if req.Type != proto.ReplacedRequest {
				out <- req
				continue
			}
			var n proto.Replaced
			if err := json.Unmarshal(req.Payload, &n); err != nil || n.By == "" {
				req.Reply(false, nil)
				continue
			}
			w.got = &ReplacedError{By: n.By, Since: n.Since}
			req.Reply(true, nil)
		}
	}()
	return out, w
}

// replaced waits until the connection's requests have ended (it is closed)
// and returns the notice it got, or nil.
func (w *noticeWatch) replaced() *ReplacedError {
	<-w.done
	return w.got
}
