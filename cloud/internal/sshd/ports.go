package sshd

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ports listens on the homes' tunnel ports and accepts their visitors, all
// ports of the endpoint in one goroutine, which waits on an epoll set of the
// listening sockets through Go's poller (the set's descriptor is readable
// while a visitor waits). A goroutine
// blocked in Accept per forwarded port was the largest share of what an
// idle home cost (issue 16: with one forward, 5 goroutines per home instead
// of 4; a home with ten mappings held ten). Each accepted visitor is handed
// over as a net.Conn, in a goroutine of its own, as an accept loop would.
type ports struct {
	onError func(err error, retryIn time.Duration) // a temporary accept error (EMFILE...)

	mu      sync.Mutex
	epfd    int                   // -1 until the first listen
	wake    [2]int                // a pipe that ends the loop (stop)
	byFD    map[int]*portListener // the open listeners, by descriptor
	stopped bool
	done    chan struct{} // closed when the loop has returned
}

// portListener is one listening tunnel port.
type portListener struct {
	p      *ports
	fd     int
	port   int
	handle func(net.Conn)
	closed bool
}

func newPorts(onError func(error, time.Duration)) *ports {
	return &ports{onError: onError, epfd: -1, byFD: map[int]*portListener{}}
}

// listen listens on 127.0.0.1:port and hands each visitor to handle.
func (p *ports) listen(port int, handle func(net.Conn)) (*portListener, error) {
	fail := func(op string, err error) (*portListener, error) {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, Err: os.NewSyscallError(op, err)}
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	// As net.Listen: a port whose last visitors are in TIME_WAIT is free.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return fail("setsockopt", err)
	}
	// Accepted sockets inherit TCP_NODELAY from the listener (Linux copies
	// the listening socket's options), as net's sockets have it set.
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		syscall.Close(fd)
		return fail("setsockopt", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return fail("bind", err)
	}
	if err := syscall.Listen(fd, 4096); err != nil { // the kernel caps it at somaxconn
		syscall.Close(fd)
		return fail("listen", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.start(); err != nil {
		syscall.Close(fd)
		return fail("epoll", err)
	}
	l := &portListener{p: p, fd: fd, port: port, handle: handle}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}); err != nil {
		syscall.Close(fd)
		return fail("epoll_ctl", err)
	}
	p.byFD[fd] = l
	return l, nil
}

// start makes the epoll set and its goroutine at the first listen. Call
// with p.mu held.
func (p *ports) start() error {
	if p.stopped {
		return net.ErrClosed
	}
	if p.epfd >= 0 {
		return nil
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return err
	}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return err
	}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}); err != nil {
		syscall.Close(epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		return err
	}
	p.epfd = epfd
	p.done = make(chan struct{})
	// A non-blocking descriptor makes a pollable os.File: the loop parks
	// in Go's poller, not in a system call of its own. A goroutine in a
	// blocking epoll_wait held a thread, and each visitor cost a hand-back
	// of the scheduler's P when the call returned (a thread switch or two).
	go p.loop(os.NewFile(uintptr(epfd), "tunnel ports"), p.wake[0])
	return nil
}

// Close stops listening; visitors already handed over are not affected.
func (l *portListener) Close() error {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	l.closed = true
	delete(p.byFD, l.fd)
	if p.epfd >= 0 {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, l.fd, nil)
	}
	return syscall.Close(l.fd)
}

// stop closes every listener and ends the loop; later listens fail.
func (p *ports) stop() {
	p.mu.Lock()
	p.stopped = true
	var ls []*portListener
	for _, l := range p.byFD {
		ls = append(ls, l)
	}
	started := p.epfd >= 0
	p.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	if started {
		syscall.Write(p.wake[1], []byte{0})
		<-p.done
	}
}

func (p *ports) loop(set *os.File, wake int) {
	defer func() {
		p.mu.Lock()
		set.Close()
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		p.epfd = -1
		p.mu.Unlock()
		close(p.done)
	}()
	events := make([]syscall.EpollEvent, 64)
	var delay time.Duration
	rc, err := set.SyscallConn()
	if err != nil {
		p.onError(err, 0)
		return
	}
	for {
		var n int
		var err error
		// Takes what is ready; with nothing, waits until the set is
		// readable (the poller's readiness is reset before the first try,
		// so a visitor arriving in between is not missed).
		rerr := rc.Read(func(fd uintptr) bool {
			n, err = syscall.EpollWait(int(fd), events, 0)
			return n > 0 || err != nil
		})
		if rerr == nil && err == syscall.EINTR {
			continue
		}
		if rerr != nil || err != nil {
			p.onError(os.NewSyscallError("epoll_wait", errors.Join(rerr, err)), time.Second)
			time.Sleep(time.Second)
			continue
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == wake {
				return
			}
			if err := p.accept(int(ev.Fd)); err != nil {
				// Out of descriptors or memory: every port waits (the
				// events stay pending), 5 ms doubling to 1 s, as the SSH
				// endpoint's accept loop does.
				if delay = 2 * delay; delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay > time.Second {
					delay = time.Second
				}
				p.onError(err, delay)
				time.Sleep(delay)
				break
			}
			delay = 0
		}
	}
}

// accept takes the visitors waiting on the listener of fd (if it is still
// one: it may have closed since epoll_wait returned) and reports an error
// worth a pause.
func (p *ports) accept(fd int) error {
	for range 64 { // then the other ports get their turn
		p.mu.Lock()
		l := p.byFD[fd]
		if l == nil {
			p.mu.Unlock()
			return nil
		}
		// Under the lock: the descriptor cannot be closed and reused meanwhile.
		nfd, sa, err := syscall.Accept4(fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		p.mu.Unlock()
		switch {
		case err == syscall.EAGAIN:
			return nil
		case err == syscall.EINTR || err == syscall.ECONNABORTED:
			continue
		case err != nil:
			return os.NewSyscallError("accept4", err)
		}
		go l.handle(newVisitorConn(nfd, l.port, sa))
	}
	return nil
}

// visitorConn is a visitor accepted on a tunnel port: the non-blocking
// socket on Go's poller as an os.File, with the addresses accept4 gave.
// net.FileConn would cost eight system calls more per visitor (dup, fcntl,
// getsockopt, getsockname, getpeername, the keepalive setsockopts, closing
// the original) for what is known already; keepalives are of no use on
// loopback, where HAProxy's timeouts end idle visitors.
type visitorConn struct {
	*os.File
	local, remote *net.TCPAddr
}

func newVisitorConn(fd, port int, sa syscall.Sockaddr) *visitorConn {
	remote := &net.TCPAddr{IP: net.IPv4zero}
	if in4, ok := sa.(*syscall.SockaddrInet4); ok {
		remote = &net.TCPAddr{IP: net.IP(in4.Addr[:]).To16(), Port: in4.Port}
	}
	// A non-blocking descriptor makes a pollable os.File (deadlines work).
	f := os.NewFile(uintptr(fd), "tunnel port "+strconv.Itoa(port))
	return &visitorConn{File: f, local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, remote: remote}
}

func (c *visitorConn) LocalAddr() net.Addr  { return c.local }
func (c *visitorConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite shuts the sending side down (the visitor reads EOF).
func (c *visitorConn) CloseWrite() error {
	rc, err := c.File.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
