package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// State is the phase of a supervised haproxy.
type State int

const (
	StateStarting State = iota // launched, admin socket not answering yet
	StateReady                 // admin socket answers: routing is live
	StateBackoff               // exited or never became ready; waiting to restart
	StateStopping              // context ended; stopping haproxy
	StateStopped               // Run has returned
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateBackoff:
		return "backoff"
	case StateStopping:
		return "stopping"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// stableUptime is how long haproxy must have run for its exit to count as a
// fresh failure (restart after MinBackoff) rather than part of a crash loop
// (the backoff keeps doubling up to MaxBackoff).
const stableUptime = 10 * time.Second

// ProcessConfig configures a managed haproxy.
type ProcessConfig struct {
	Binary       string        // haproxy executable; empty means "haproxy" from PATH
	ConfigPath   string        // rendered configuration (see WriteConfig)
	SocketPath   string        // admin socket named in the configuration
	Logger       *slog.Logger  // nil means slog.Default()
	ReadyTimeout time.Duration // how long a fresh haproxy may take to answer; 0 means 10s
	StopTimeout  time.Duration // soft-stop grace for open connections; 0 means 5s
	MinBackoff   time.Duration // first restart delay; 0 means 100ms
	MaxBackoff   time.Duration // restart delay cap; 0 means 5s

	// OnReady is called each time a newly started haproxy answers on its
	// socket, just before the state turns ready; restarts is 0 for the
	// first start. HAProxy has just loaded the
	// map files, so this is where a reconciler re-pushes anything newer.
	// It runs on the supervising goroutine and should return promptly.
	OnReady func(restarts int)
	// BeforeStart, if set, is called before each start of haproxy, on the
	// supervising goroutine: where the map files are brought up to date,
	// since haproxy loads its routes from them.
	BeforeStart func()
}

// Process runs haproxy in master-worker mode as a child, restarts it when it
// dies and stops it when Run's context ends.
type Process struct {
	cfg ProcessConfig
	log *slog.Logger

	mu       sync.Mutex
	state    State
	pid      int           // master pid while running
	restarts int           // completed restarts
	readyC   chan struct{} // closed while state is StateReady
	doneC    chan struct{} // closed when Run returns
}

// NewProcess returns a Process; call Run to start it.
func NewProcess(cfg ProcessConfig) *Process {
	if cfg.Binary == "" {
		cfg.Binary = "haproxy"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Process{
		cfg:    cfg,
		log:    log.With("component", "haproxy"),
		readyC: make(chan struct{}),
		doneC:  make(chan struct{}),
	}
}

// State returns the current phase.
func (p *Process) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Ready reports whether haproxy is answering on its admin socket (readyz).
func (p *Process) Ready() bool { return p.State() == StateReady }

// Restarts returns how many times haproxy has been restarted.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Pid returns the pid of the haproxy master, or 0 when none is running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// WaitReady blocks until haproxy is ready, ctx ends or Run returns.
func (p *Process) WaitReady(ctx context.Context) error {
	p.mu.Lock()
	readyC := p.readyC
	p.mu.Unlock()
	select {
	case <-readyC:
		return nil
	case <-p.doneC:
		return errors.New("haproxy: process stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Process) setState(s State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == p.state {
		return
	}
	if s == StateReady {
		close(p.readyC)
	} else if p.state == StateReady {
		p.readyC = make(chan struct{})
	}
	p.state = s
}

// Run supervises haproxy until ctx ends, then stops it and returns nil. It
// returns an error only when the haproxy binary cannot be found. Run may be
// called once.
func (p *Process) Run(ctx context.Context) error {
	defer close(p.doneC)
	defer p.setState(StateStopped)
	bin, err := exec.LookPath(p.cfg.Binary)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	backoff := p.cfg.MinBackoff
	for {
		uptime, err := p.runOnce(ctx, bin)
		if ctx.Err() != nil {
			return nil
		}
		if uptime >= stableUptime {
			backoff = p.cfg.MinBackoff
		}
		p.setState(StateBackoff)
		p.log.Warn("haproxy exited; restarting", "err", err, "uptime", uptime.Round(time.Millisecond), "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
	}
}

// runOnce starts one haproxy and returns when it has exited (with how long
// it ran and why) or, once ctx ends, when it has been stopped.
func (p *Process) runOnce(ctx context.Context, bin string) (time.Duration, error) {
	p.setState(StateStarting)
	if p.cfg.BeforeStart != nil {
		p.cfg.BeforeStart()
	}
	inst, err := p.start(bin)
	if err != nil {
		return 0, err
	}
	defer func() {
		inst.killGroup() // an orphaned worker would keep the ports
		p.mu.Lock()
		p.pid = 0
		p.mu.Unlock()
	}()
	if err := p.waitReady(ctx, inst); err == nil {
		restarts := p.Restarts()
		p.log.Info("haproxy ready", "pid", inst.pid, "restarts", restarts)
		// OnReady before the state says so: whoever waits for readiness
		// finds OnReady's work (a reconcile kick) already asked for.
		if p.cfg.OnReady != nil {
			p.cfg.OnReady(restarts)
		}
		p.setState(StateReady)
	} else if ctx.Err() == nil && !inst.exited() {
		p.log.Error("haproxy did not become ready; killing it", "pid", inst.pid, "err", err)
		inst.signal(syscall.SIGKILL)
	}
	select {
	case <-ctx.Done():
		p.stop(inst)
		return time.Since(inst.started), nil
	case <-inst.done:
		return time.Since(inst.started), fmt.Errorf("haproxy: pid %d: %w", inst.pid, inst.err)
	}
}

// instance is one run of the haproxy master and its workers.
type instance struct {
	pid     int
	started time.Time
	done    chan struct{} // closed once the master has exited and been reaped
	err     error         // the master's exit status; read after done
}

func (i *instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the master only.
func (i *instance) signal(sig syscall.Signal) {
	_ = syscall.Kill(i.pid, sig)
}

// killGroup kills whatever is left of the process group (the master was
// started as its leader), so an orphaned worker cannot keep the ports.
func (i *instance) killGroup() {
	_ = syscall.Kill(-i.pid, syscall.SIGKILL)
}

// start launches "haproxy -W -db -f <config>" in its own process group.
func (p *Process) start(bin string) (*instance, error) {
	// A stale socket file must not answer for the new instance.
	if err := os.Remove(p.cfg.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("haproxy: remove stale socket: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	cmd := exec.Command(bin, "-W", "-db", "-f", p.cfg.ConfigPath)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// Do not outlive the cloud: an orphan would hold the public ports.
		Pdeathsig: syscall.SIGTERM,
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("haproxy: start: %w", err)
	}
	inst := &instance{pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	p.mu.Lock()
	p.pid = inst.pid
	p.mu.Unlock()
	p.log.Info("haproxy started", "pid", inst.pid, "config", p.cfg.ConfigPath)
	go p.logOutput(r)
	go func() {
		inst.err = cmd.Wait()
		close(inst.done)
	}()
	return inst, nil
}

// logOutput relays haproxy's stdout and stderr to the logger, one record per
// line, until every process of the instance has closed them.
func (p *Process) logOutput(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		switch {
		case strings.HasPrefix(line, "[ALERT]"):
			level = slog.LevelError
		case strings.HasPrefix(line, "[WARNING]"):
			level = slog.LevelWarn
		}
		p.log.Log(context.Background(), level, "haproxy output", "line", line)
	}
}

// waitReady polls the admin socket with a short backoff until it answers,
// the instance exits, ctx ends or ReadyTimeout passes.
func (p *Process) waitReady(ctx context.Context, inst *instance) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	c := &Client{SocketPath: p.cfg.SocketPath, Timeout: 500 * time.Millisecond}
	delay := 5 * time.Millisecond
	for {
		_, err := c.Info(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-inst.done:
			t.Stop()
			return fmt.Errorf("haproxy: exited before ready: %v", inst.err)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("haproxy: not ready: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// stop soft-stops haproxy (SIGUSR1: stop listening, let connections finish),
// escalating to SIGTERM after StopTimeout and to SIGKILL after one more
// second.
func (p *Process) stop(inst *instance) {
	p.setState(StateStopping)
	p.log.Info("haproxy stopping", "pid", inst.pid)
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{
		{syscall.SIGUSR1, p.cfg.StopTimeout},
		{syscall.SIGTERM, time.Second},
		{syscall.SIGKILL, 5 * time.Second},
	}
	for _, s := range steps {
		inst.signal(s.sig)
		t := time.NewTimer(s.wait)
		select {
		case <-inst.done:
			t.Stop()
			p.log.Info("haproxy stopped", "pid", inst.pid, "signal", s.sig.String(), "err", inst.err)
			return
		case <-t.C:
		}
	}
	p.log.Error("haproxy did not exit after SIGKILL", "pid", inst.pid)
}

// CheckConfig runs "haproxy -c" on the configuration at path (the map files
// must exist). binary empty means "haproxy" from PATH.
func CheckConfig(ctx context.Context, binary, path string) error {
	if binary == "" {
		binary = "haproxy"
	}
	out, err := exec.CommandContext(ctx, binary, "-c", "-q", "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy: config check failed: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
