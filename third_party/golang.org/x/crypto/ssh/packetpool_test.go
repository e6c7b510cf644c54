// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestBufferReleasesReadPackets: a packet queued with writePacket is
// released once its data is read, not before, and reads see every byte.
func TestBufferReleasesReadPackets(t *testing.T) {
	b := newBuffer()
	packet := packetBuffer(msgChannelData, dataPacketSize)
	for i := range packet {
		packet[i] = byte(i)
	}
	want := bytes.Clone(packet[9:])
	b.writePacket(packet[9:], packet)
	queued := b.tail
	got := make([]byte, 0, len(want))
	chunk := make([]byte, 1000)
	for len(got) < len(want) {
		if queued.packet == nil {
			t.Fatalf("packet released after %d of %d bytes", len(got), len(want))
		}
		n, err := b.Read(chunk)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, chunk[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("read data differs from the data written")
	}
	b.eof()
	if _, err := b.Read(chunk); err != io.EOF {
		t.Fatalf("read after eof: %v, want EOF", err)
	}
	if queued.packet != nil {
		t.Fatal("packet still held after all of its data was read")
	}
}

// TestSmallPacketsAreNotPooled: a peer sending many tiny data packets must
// not pin a pooled 32 KiB buffer with each.
func TestSmallPacketsAreNotPooled(t *testing.T) {
	for _, n := range []int{10, minPooledPacket - 1} {
		if got := cap(packetBuffer(msgChannelData, n)); got != n {
			t.Errorf("buffer for a %d-byte data packet has capacity %d, want %d", n, got, n)
		}
	}
	if got := cap(packetBuffer(msgChannelData, dataPacketSize)); got < maxPooledSize {
		t.Errorf("buffer for a full data packet has capacity %d, want a pooled one (>= %d)", got, maxPooledSize)
	}
}

// TestPooledBuffersFitTheirPackets: a data packet takes the smallest class
// of pooled buffer that holds it, so a peer's packets pin at most about
// twice their bytes (the window bounds the bytes), and a buffer given back
// serves its class again. Buffers of odd sizes given back (the largest
// packet's exact size, a class buffer worn below its size) must not end up
// serving a smaller class: one did in a CI run, a 33 KiB packet in a
// 128 KiB buffer.
func TestPooledBuffersFitTheirPackets(t *testing.T) {
	for _, odd := range []int{dataPacketSize, poolClasses[2] - 1, poolClasses[1] - 1, 100 << 10} {
		releasePacket(make([]byte, odd))
	}
	overhead := receivedSize(0) + pooledSlack
	for _, n := range []int{minPooledPacket, 32 << 10, 33 << 10, 64 << 10, 65 << 10, dataPacketSize} {
		buf := packetBuffer(msgChannelData, n)
		if c := cap(buf); c < n || c > 2*n+overhead {
			t.Errorf("a %d-byte data packet got a buffer of capacity %d, want %d..%d", n, c, n, 2*n+overhead)
		}
		releasePacket(buf)
		if c := cap(pooledBuffer(n)); c < n || c > 2*n+overhead {
			t.Errorf("after a release, a %d-byte packet got capacity %d", n, c)
		}
	}
}

// TestPooledChannelDataIntact moves random data over several channels of one
// connection at once, written and read in random sizes, so that pooled
// packet buffers are reused many times while other channels still hold
// theirs; every channel must receive exactly what was sent. aes-gcm
// decrypts in the pooled buffers, chacha20-poly1305 and aes-ctr are copied
// into them.
func TestPooledChannelDataIntact(t *testing.T) {
	for _, cipher := range []string{CipherAES128GCM, CipherChaCha20Poly1305, CipherAES128CTR} {
		t.Run(cipher, func(t *testing.T) { testPooledChannelData(t, cipher) })
	}
}

func testPooledChannelData(t *testing.T, cipher string) {
	c1, c2, err := netPipe()
	if err != nil {
		t.Fatal(err)
	}
	serverConf := &ServerConfig{NoClientAuth: true}
	serverConf.AddHostKey(testSigners["ecdsa"])
	serverDone := make(chan *server, 1)
	go func() {
		s, err := newServer(c2, serverConf)
		if err != nil {
			t.Error(err)
		}
		serverDone <- s
	}()
	clientConf := &ClientConfig{User: "user", HostKeyCallback: InsecureIgnoreHostKey()}
	clientConf.Ciphers = []string{cipher}
	client, _, reqs, err := NewClientConn(c1, "", clientConf)
	if err != nil {
		t.Fatal(err)
	}
	go DiscardRequests(reqs)
	server := <-serverDone
	if server == nil {
		t.FailNow()
	}
	defer client.Close()
	defer server.Close()

	const channels, size = 4, 4 << 20
	sums := make(chan [sha256.Size]byte, channels)
	var wg sync.WaitGroup
	go func() {
		for range channels {
			newCh, err := server.Accept()
			if err != nil {
				return
			}
			ch, reqs, err := newCh.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			go DiscardRequests(reqs)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ch.Close()
				h := sha256.New()
				buf := make([]byte, 64<<10)
				for {
					n, err := ch.Read(buf[:1+rand.IntN(len(buf))])
					h.Write(buf[:n])
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
				sums <- [sha256.Size]byte(h.Sum(nil))
			}()
		}
	}()

	want := map[[sha256.Size]byte]int{}
	var mu sync.Mutex
	var writers sync.WaitGroup
	for i := range channels {
		data := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		mu.Lock()
		want[sha256.Sum256(data)]++
		mu.Unlock()
		ch, reqs, err := client.OpenChannel("data", nil)
		if err != nil {
			t.Fatal(err)
		}
		go DiscardRequests(reqs)
		writers.Add(1)
		go func() {
			defer writers.Done()
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+rand.IntN(100<<10))
				if _, err := ch.Write(rest[:n]); err != nil {
					t.Error(err)
					return
				}
				rest = rest[n:]
			}
			ch.CloseWrite()
		}()
	}
	writers.Wait()
	for range channels {
		sum := <-sums
		if want[sum] == 0 {
			t.Fatal("a channel received data that was not sent on any channel")
		}
		want[sum]--
	}
	wg.Wait()
}

// TestWriteToHandsOverEveryByte: io.Copy from a channel uses its WriteTo,
// which gives the received packets to the writer as they are; the data
// must arrive whole and in order, and the window must keep moving (the
// transfer is larger than the channel window).
func TestWriteToHandsOverEveryByte(t *testing.T) {
	client, server, err := sshPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer server.Close()

	data := make([]byte, 3*channelWindowSize+12345)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	got := make(chan []byte, 1)
	go func() {
		newCh, err := server.Accept()
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		ch, reqs, err := newCh.Accept()
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		go DiscardRequests(reqs)
		if _, ok := ch.(io.WriterTo); !ok {
			t.Error("channel does not implement io.WriterTo")
		}
		var out bytes.Buffer
		n, err := io.Copy(&out, ch)
		if err != nil || n != int64(len(data)) {
			t.Errorf("io.Copy = %d, %v; want %d, nil", n, err, len(data))
		}
		got <- out.Bytes()
	}()
	ch, reqs, err := client.OpenChannel("data", nil)
	if err != nil {
		t.Fatal(err)
	}
	go DiscardRequests(reqs)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(200<<10))
		if _, err := ch.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	ch.CloseWrite()
	if !bytes.Equal(<-got, data) {
		t.Fatal("data written to the channel differs from what WriteTo delivered")
	}
}

// TestGCMKeepsNoLargeBuffer: after sealing and opening packets of every
// size up to a full data packet, the aes-gcm ciphers of both directions
// hold no buffer larger than keptBufferSize (an idle connection would keep
// it for as long as it lives), and every packet arrives intact.
func TestGCMKeepsNoLargeBuffer(t *testing.T) {
	key := make([]byte, 16)
	iv := make([]byte, 12)
	w, err := newGCMCipher(key, append([]byte(nil), iv...), nil, DirectionAlgorithms{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newGCMCipher(key, append([]byte(nil), iv...), nil, DirectionAlgorithms{})
	var wire bytes.Buffer
	for seq, size := range []int{100, 3000, 20000, dataPacketSize} {
		for _, msgType := range []byte{msgChannelData, msgChannelRequest} {
			packet := make([]byte, size)
			for i := range packet {
				packet[i] = byte(i * 7)
			}
			packet[0] = msgType
			if err := w.writeCipherPacket(uint32(seq), &wire, crand.Reader, packet); err != nil {
				t.Fatal(err)
			}
			got, err := r.readCipherPacket(uint32(seq), &wire)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, packet) {
				t.Fatalf("a packet of %d bytes (type %d) arrived changed", size, msgType)
			}
		}
	}
	if c := cap(w.(*gcmCipher).buf); c > keptBufferSize {
		t.Errorf("the sending cipher keeps a %d-byte buffer, want at most %d", c, keptBufferSize)
	}
	if c := cap(r.(*gcmCipher).buf); c > keptBufferSize {
		t.Errorf("the receiving cipher keeps a %d-byte buffer, want at most %d", c, keptBufferSize)
	}
}
