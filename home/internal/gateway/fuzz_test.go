package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/proto"
)

// bytesConn is a connection whose peer sent b and closed.
type bytesConn struct {
	net.Conn // nil: only what the gateway calls on a forwarded channel is here
	r        *bytes.Reader
}

func newBytesConn(b []byte) *bytesConn           { return &bytesConn{r: bytes.NewReader(b)} }
func (c *bytesConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *bytesConn) Close() error                { return nil }
func (c *bytesConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 20001}
}
func (c *bytesConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadHeader feeds arbitrary bytes to the gateway as the start of a
// public connection. When it accepts a PROXY header: the header takes
// exactly the bytes it declares and no byte of the client's data, the
// client's address is the header's source, and the header passed on to a
// local service (send_proxy) encodes and decodes to the same addresses.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"))
	g := &Gateway{o: Options{HeaderTimeout: time.Second}}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, hdr, err := g.readHeader(context.Background(), newBytesConn(data), false, false, new(Counter))
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(c)
		n := len(data) - len(rest)
		if !bytes.Equal(rest, data[n:]) {
			t.Fatalf("after the header the connection reads %q, not the %q that followed it", proto.Printable(string(rest)), proto.Printable(string(data[n:])))
		}
		if hdr.Version == 2 && n != 16+int(binary.BigEndian.Uint16(data[14:16])) {
			t.Fatalf("v2 header declares %d bytes but %d were taken", 16+int(binary.BigEndian.Uint16(data[14:16])), n)
		}
		again, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(data[:n])))
		if err != nil || headerString(again) != headerString(hdr) {
			t.Fatalf("the header's own %d bytes parse to %s, %v; with what follows to %s", n, headerString(again), err, headerString(hdr))
		}
		if hdr.Command.IsProxy() && hdr.SourceAddr != nil && c.RemoteAddr().String() != hdr.SourceAddr.String() {
			t.Fatalf("RemoteAddr = %v, the header says %v", c.RemoteAddr(), hdr.SourceAddr)
		}
		out := outgoingHeader(c, hdr)
		b, err := out.Format()
		if err != nil {
			t.Fatalf("the header for the local service, %+v, does not encode: %v", out, err)
		}
		back, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("the header for the local service, %q, does not parse: %v", b, err)
		}
		if addrString(back.SourceAddr) != addrString(out.SourceAddr) || addrString(back.DestinationAddr) != addrString(out.DestinationAddr) {
			t.Fatalf("the local service would read %v -> %v, the gateway meant %v -> %v",
				back.SourceAddr, back.DestinationAddr, out.SourceAddr, out.DestinationAddr)
		}
	})
}

// FuzzReadHeaderOptional feeds arbitrary bytes to an HTTP entry, which
// also takes connections without a PROXY header. One taken without a header
// starts like an HTTP request (an upper-case letter, and not "PROXY "), and
// the HTTP server then reads every byte the client sent; one with a header
// is taken as FuzzReadHeader says.
func FuzzReadHeaderOptional(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"))
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 443\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PROPFIND / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01})
	g := &Gateway{o: Options{HeaderTimeout: time.Second}}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, hdr, err := g.readHeader(context.Background(), newBytesConn(data), false, true, new(Counter))
		if err != nil {
			return
		}
		if !c.forwarded {
			if hdr == nil {
				t.Fatal("taken with neither a header nor as forwarded HTTP")
			}
			return
		}
		if hdr != nil || data[0] < 'A' || data[0] > 'Z' || bytes.HasPrefix(data, []byte("PROXY ")) {
			t.Fatalf("%q taken as HTTP without a header", proto.Printable(string(data)))
		}
		if rest, _ := io.ReadAll(c); !bytes.Equal(rest, data) {
			t.Fatalf("the HTTP server reads %d of the %d bytes sent", len(rest), len(data))
		}
	})
}

// headerString is everything a header says (its EqualsTo panics on a
// header without addresses).
func headerString(h *proxyproto.Header) string {
	tlvs, err := h.TLVs()
	return fmt.Sprintf("v%d %v %v %s -> %s tlvs %v %v", h.Version, h.Command, h.TransportProtocol,
		addrString(h.SourceAddr), addrString(h.DestinationAddr), tlvs, err)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.Network() + " " + a.String()
}

// FuzzSniff feeds arbitrary bytes, after the PROXY header, to an https
// entry's sniffer. When it decides: plain HTTP is exactly a first byte that
// is not a TLS handshake record, and whoever serves the connection then
// reads every byte the client sent, the ones sniffed included, in order.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("GET /.well-known/acme-challenge/x HTTP/1.1\r\nHost: a.example.com\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte{0x16})
	g := &Gateway{o: Options{HeaderTimeout: time.Second}}
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := newBytesConn(data)
		br := bufio.NewReader(conn)
		c := &proxiedConn{Conn: conn, br: br, r: br, remote: conn.RemoteAddr(), count: new(Counter)}
		h, plain, err := g.sniff(context.Background(), c)
		if err != nil {
			return
		}
		if plain != (data[0] != tlsHandshakeRecord) {
			t.Fatalf("first byte %#x taken as plain=%v", data[0], plain)
		}
		if !plain && h == nil {
			t.Fatal("TLS without a ClientHello")
		}
		if got, _ := io.ReadAll(c); !bytes.Equal(got, data) {
			i := 0
			for i < len(got) && i < len(data) && got[i] == data[i] {
				i++
			}
			t.Fatalf("the served connection reads %d bytes, the client sent %d; they differ from byte %d", len(got), len(data), i)
		}
	})
}
