// Package control is the local channel between `home` commands and a
// running agent (console or foreground tunnel) of the same profile: HTTP over
// a unix socket in the profile directory, mode 0600, so only the profile's
// owner can use it.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"homeport.dev/home/internal/certs"
)

// TunnelStatus is the SSH connection's state.
type TunnelStatus struct {
	State     string    `json:"state"` // connecting, connected, backoff, stopped, replaced
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	// ErrorSince is when LastError began. A connected tunnel shows no
	// error from before it connected.
	ErrorSince time.Time `json:"error_since,omitzero"`
	Attempts   int       `json:"attempts"`
	// RunningOn and RunningSince, in state replaced, say where the copy of
	// the profile that took the tunnel over connects from, and since when.
	RunningOn    string    `json:"running_on,omitempty"`
	RunningSince time.Time `json:"running_since,omitzero"`
}

// ForwardStatus is one entry's live state: what its visitors experience.
type ForwardStatus struct {
	Entry      uint64 `json:"entry"`
	Public     string `json:"public"`
	Target     string `json:"target"`
	TunnelPort int    `json:"tunnel_port"`
	// Up: visitors reach the local service. Only when CloudMapping, Bound
	// and LocalUp all hold.
	Up bool `json:"up"`
	// Error says, in words, which layer fails (State), empty when up;
	// "closed" for a closed entry.
	Error   string `json:"error,omitempty"`
	LocalUp bool   `json:"local_listening"` // the local service answers a TCP connect
	// State is up, or the first layer that fails: closed, no_mapping,
	// not_bound, local_down.
	State string `json:"state"`
	// Since is when the forward entered State (zero when unknown).
	Since time.Time `json:"since,omitzero"`
	// CloudMapping: the cloud has the forward's mapping (the route its
	// visitors hit), as of Status.MappingsChecked.
	CloudMapping bool `json:"cloud_mapping"`
	// Bound: the cloud listens on the forward's tunnel port for this home
	// on the live connection.
	Bound bool `json:"bound"`
}

// Forward states (ForwardStatus.State).
const (
	ForwardUp        = "up"
	ForwardClosed    = "closed"
	ForwardNoMapping = "no_mapping" // the cloud has no mapping: visitors get 503
	ForwardNotBound  = "not_bound"  // the tunnel forward is not bound: the cloud's offline page
	ForwardLocalDown = "local_down" // nothing answers on the target: the gateway's 502
)

// Status is what a running agent reports.
type Status struct {
	Profile  string          `json:"profile"`
	Home     string          `json:"home"`
	Cloud    string          `json:"cloud"`
	Tunnel   TunnelStatus    `json:"tunnel"`
	Forwards []ForwardStatus `json:"forwards"`
	// Certificates of the exposed names, by name.
	Certificates []certs.Info `json:"certificates"`
	// ConfigError is why config.yaml's forwards, as edited last, were
	// refused (the forwards running stay as they were), naming the field.
	ConfigError string `json:"config_error,omitempty"`
	// MappingsChecked is when the cloud last listed the home's mappings
	// (ForwardStatus.CloudMapping); MappingsError why it could not since
	// MappingsErrorSince.
	MappingsChecked    time.Time `json:"mappings_checked,omitzero"`
	MappingsError      string    `json:"mappings_error,omitempty"`
	MappingsErrorSince time.Time `json:"mappings_error_since,omitzero"`
}

// IssueEvent is one line of the answer to POST /certs/issue (JSON lines):
// progress steps, then a last line with the outcome.
type IssueEvent struct {
	Step   string       `json:"step,omitempty"`
	Done   bool         `json:"done,omitempty"`
	Info   *certs.Info  `json:"info,omitempty"`
	Error  string       `json:"error,omitempty"`
	Reason certs.Reason `json:"reason,omitempty"`
}

// ErrNotRunning means no agent serves the socket.
var ErrNotRunning = errors.New("no console or foreground tunnel is running for this profile")

// Client talks to the agent of one profile.
type Client struct {
	http   *http.Client
	socket string
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{socket: path, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) || errors.Is(err, os.ErrNotExist) {
			return ErrNotRunning
		}
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the running agent answered %s: %s", resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Dial opens a stream to tunnel port through the running agent.
func (c *Client) Dial(ctx context.Context, port int) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, ErrNotRunning
	}
	fmt.Fprintf(conn, "POST /dial?port=%d HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n", port)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		return nil, fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return &bufferedConn{Conn: conn, r: br}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// pipe copies both ways between a hijacked client and the target.
func pipe(client net.Conn, target net.Conn, pending *bufio.Reader) {
	defer client.Close()
	defer target.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(target, pending); done <- struct{}{} }()
	go func() { io.Copy(client, target); done <- struct{}{} }()
	<-done
}

// Status asks for the live status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/status", &s)
}

// FreshStatus asks for the live status after the agent has asked the
// cloud whether it still has the home's mappings (`home status`).
func (c *Client) FreshStatus(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/status?fresh=1", &s)
}

// Reload asks the agent to re-read the entries and (re)connect the tunnel.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/reload", nil)
}

// Rekey asks the agent to re-read the home's key and reconnect with it
// (after `home rotate-key`).
func (c *Client) Rekey(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/rekey", nil)
}

// Disconnect asks the agent to close the tunnel.
func (c *Client) Disconnect(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/disconnect", nil)
}

// IssueCertificate asks the running agent to obtain (renew: replace) the
// certificate of domain, passing its progress steps to progress as they
// come. It waits for the outcome until ctx ends.
func (c *Client) IssueCertificate(ctx context.Context, domain string, renew bool, progress func(string)) (certs.Info, error) {
	q := url.Values{"domain": {domain}}
	if renew {
		q.Set("renew", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent/certs/issue?"+q.Encode(), nil)
	if err != nil {
		return certs.Info{}, err
	}
	// No overall client timeout: an issuance streams for as long as it
	// takes; ctx bounds it.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) || errors.Is(err, os.ErrNotExist) {
			return certs.Info{}, ErrNotRunning
		}
		return certs.Info{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return certs.Info{}, fmt.Errorf("the running agent answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev IssueEvent
		if err := dec.Decode(&ev); err != nil {
			return certs.Info{}, fmt.Errorf("the running agent's answer ended early: %w", err)
		}
		if ev.Step != "" && progress != nil {
			progress(ev.Step)
		}
		if !ev.Done {
			continue
		}
		var info certs.Info
		if ev.Info != nil {
			info = *ev.Info
		}
		if ev.Error != "" {
			return info, &RemoteError{Msg: ev.Error, Reason: ev.Reason}
		}
		return info, nil
	}
}

// RemoteError is an error the running agent reported.
type RemoteError struct {
	Msg    string
	Reason certs.Reason
}

func (e *RemoteError) Error() string { return e.Msg }

// Agent is what a running agent offers over the socket.
type Agent interface {
	Status() Status
	// FreshStatus is Status after asking the cloud for the home's
	// mappings.
	FreshStatus(ctx context.Context) Status
	// IssueCertificate obtains (renew: replaces) the certificate of domain,
	// reporting its steps to progress.
	IssueCertificate(ctx context.Context, domain string, renew bool, progress certs.Progress) (certs.Info, error)
	Reload(ctx context.Context) error
	// Rekey re-reads the home's key and reconnects the tunnel with it.
	Rekey(ctx context.Context) error
	Disconnect(ctx context.Context) error
	// Dial opens a stream to a private mapping's tunnel port through the
	// agent's tunnel (home connect).
	Dial(ctx context.Context, port int) (net.Conn, error)
}

// Serve answers the control API for a on a unix socket at path until ctx
// ends. A stale socket (no agent behind it) is replaced; a live one means
// another agent runs for this profile, which is refused.
func Serve(ctx context.Context, path string, a Agent) error {
	if _, err := NewClient(path).Status(ctx); err == nil {
		return fmt.Errorf("another console or tunnel already runs for this profile (socket %s)", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	made, err := os.Stat(path)
	if err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("fresh") != "" {
			json.NewEncoder(w).Encode(a.FreshStatus(r.Context()))
			return
		}
		json.NewEncoder(w).Encode(a.Status())
	})
	action := func(fn func(context.Context) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := fn(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	}
	mux.HandleFunc("POST /reload", action(a.Reload))
	mux.HandleFunc("POST /rekey", action(a.Rekey))
	mux.HandleFunc("POST /dial", func(w http.ResponseWriter, r *http.Request) {
		port, err := strconv.Atoi(r.URL.Query().Get("port"))
		if err != nil || port < 1 || port > 65535 {
			http.Error(w, "port must be 1-65535", http.StatusBadRequest)
			return
		}
		target, err := a.Dial(r.Context(), port)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			target.Close()
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
		buf.Flush()
		go pipe(conn, target, buf.Reader)
	})
	mux.HandleFunc("POST /disconnect", action(a.Disconnect))
	mux.HandleFunc("POST /certs/issue", func(w http.ResponseWriter, r *http.Request) {
		domain := r.URL.Query().Get("domain")
		if domain == "" {
			http.Error(w, "domain is required", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		rc := http.NewResponseController(w)
		// Progress comes from the attempt's goroutine, which may outlive
		// this request (a client that went away): after the last event,
		// nothing more is written.
		var mu sync.Mutex
		done := false
		enc := json.NewEncoder(w)
		send := func(ev IssueEvent) {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return
			}
			enc.Encode(ev)
			rc.Flush()
			done = ev.Done
		}
		info, err := a.IssueCertificate(r.Context(), domain, r.URL.Query().Get("renew") != "", func(step string) {
			send(IssueEvent{Step: step})
		})
		ev := IssueEvent{Done: true, Info: &info}
		if err != nil {
			ev.Error, ev.Reason = err.Error(), certs.ReasonOf(err)
		}
		send(ev)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err = srv.Serve(ln)
	// Gone before Serve returns, so that an agent started next in this
	// process finds nobody answering; and only the socket this call made:
	// one made since by the next agent stays.
	srv.Close()
	if mine, err := os.Stat(path); err == nil && os.SameFile(mine, made) {
		os.Remove(path)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
