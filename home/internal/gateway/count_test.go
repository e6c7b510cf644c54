package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// TestTrafficIsCountedPerForwardAndDirection sends known bytes through a
// real cloud (HAProxy, the SSH endpoint) to three forwards: an upload to
// one tcp forward, a download from another, an HTTP request to an http
// forward. Each forward's counter holds its own bytes, by direction, and
// only its own.
func TestTrafficIsCountedPerForwardAndDirection(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h := c.ClaimHome(t, c.CreateUser(t, "alice"))
	h.AddBaseDomain(t, "example.com")
	up := h.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCPPorts.First})
	down := h.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCPPorts.First + 1})
	web := h.Map(t, proto.MappingRequest{Scheme: "http", Host: "web.example.com"})

	const upBytes, downBytes = 3<<20 + 17, 5<<20 + 3
	// sink reads everything, then says how much.
	sink := testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d\n", n)
	})
	// source sends downBytes after the first line.
	source := testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			io.Copy(c, io.LimitReader(zeros{}, downBytes))
		}
	})
	webApp := httpService(t, nil)

	g := newGateway(t, gateway.Options{Home: h.Slug})
	counts := map[string]*gateway.Counter{"up": {}, "down": {}, "web": {}}
	forwards := []tunnel.Forward{
		{TunnelPort: up.TunnelPort, Handler: handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: sink, Count: counts["up"]})},
		{TunnelPort: down.TunnelPort, Handler: handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: source, Count: counts["down"]})},
		{TunnelPort: web.TunnelPort, Handler: handler(t, g, gateway.Entry{Kind: gateway.HTTP, Target: webApp, Count: counts["web"]})},
	}
	runHome(t, h, forwards)

	type bytesBy struct{ in, out uint64 }
	read := func(name string) bytesBy {
		in, out := counts[name].Bytes()
		return bytesBy{in, out}
	}
	// Each exchange ends with the gateway closing the connection, after it
	// counted the last byte: what the client read is what was counted.
	exchange := func(public int, send io.Reader) []byte {
		t.Helper()
		conn, err := clientDialer().Dial("tcp", fmt.Sprintf("127.0.0.1:%d", public))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(conn, send); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	reply := exchange(up.PublicPort, io.LimitReader(zeros{}, upBytes))
	if want := fmt.Sprintf("got %d\n", upBytes); string(reply) != want {
		t.Fatalf("the upload's service answered %q, want %q", reply, want)
	}
	if got, want := read("up"), (bytesBy{upBytes, uint64(len(reply))}); got != want {
		t.Errorf("upload: counted %+v, want %+v (in = what the visitor sent, out = the answer)", got, want)
	}

	payload := exchange(down.PublicPort, strings.NewReader("send\n"))
	if len(payload) != downBytes {
		t.Fatalf("download: %d bytes arrived, want %d", len(payload), downBytes)
	}
	if got, want := read("down"), (bytesBy{5, downBytes}); got != want {
		t.Errorf("download: counted %+v, want %+v", got, want)
	}

	resp, err := httpClient(c.HTTPAddr, nil).Get("http://web.example.com/" + strings.Repeat("p", 1000))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("ppp")) {
		t.Fatalf("http: %d %s", resp.StatusCode, body)
	}
	// The response's last write is counted just after it is sent: wait for
	// it (bounded) rather than race it.
	var w bytesBy
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w = read("web"); w.out >= uint64(len(body)) {
			break
		}
	}
	// HAProxy rewrites the request and the response's headers; the bytes
	// counted are the gateway's: at least the request line and the body.
	if w.in < 1000 || w.out < uint64(len(body)) {
		t.Errorf("http: counted %+v, want in >= 1000 (the request's path) and out >= %d (the body)", w, len(body))
	}
	// The tcp forwards' counters did not move.
	if got := read("up"); got != (bytesBy{upBytes, uint64(len(reply))}) {
		t.Errorf("the upload's counter moved to %+v after other forwards' traffic", got)
	}
	if got := read("down"); got != (bytesBy{5, downBytes}) {
		t.Errorf("the download's counter moved to %+v after other forwards' traffic", got)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
