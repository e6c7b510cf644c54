// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"io"
	"net"
	"os"
	"sync"
)

// Homeport patch (third_party/README.md): large channel data packets are
// received into pooled buffers, which the channel's buffer gives back once
// the reader has consumed their bytes. Upstream allocates a fresh 32 KiB
// slice per packet; at tunnel speeds the garbage collector and the page
// faults of those allocations cost more CPU than decryption. The aes-gcm
// cipher reads and decrypts in the pooled buffer itself; the others decrypt
// in their own buffer and the transport copies the packet into a pooled one.

// dataPacketSize holds the largest channel data packet this side accepts:
// message type, recipient channel and length (9 bytes), then at most
// channelMaxPacket bytes of data (handleData refuses more).
const dataPacketSize = 9 + channelMaxPacket

// receivedSize is the most a pooled buffer must hold for a data packet of
// data bytes as aes-gcm receives it (padding length, packet, at most 255
// bytes of padding, tag).
func receivedSize(data int) int { return 1 + 9 + data + 255 + gcmTagSize }

// poolClasses are the sizes of the pooled buffers: each holds a data
// packet of up to 32, 64 or 128 KiB of data. A packet takes the smallest
// that holds it, so a buffer is at most about twice the packet; 32 KiB is
// what OpenSSH sends, 128 KiB what homeport's agent and cloud send each
// other (channelMaxPacket).
var poolClasses = [...]int{receivedSize(32 << 10), receivedSize(64 << 10), receivedSize(channelMaxPacket)}

// minPooledPacket is the smallest packet given a pooled buffer: the channel
// window limits the bytes a peer may have waiting, not the packets, so
// pooling small packets would let a peer pin a whole buffer per byte sent.
// Above half the smallest class, memory held is at most twice the data.
const minPooledPacket = (32 << 10) / 2

// maxPooledSize is the most a pooled buffer is asked to hold: the largest
// data packet as aes-gcm receives it. Larger buffers are not pooled.
const maxPooledSize = 1 + dataPacketSize + 255 + gcmTagSize

// pooledSlack is the extra room of a new pooled buffer. A packet decrypted
// in place by aes-gcm starts one byte into its buffer (after the padding
// length), so the buffer given back is one byte shorter each use; the
// extra room lets it serve a thousand packets of its class before it moves
// to the class below (or is dropped).
const pooledSlack = 1024

// keptBufferSize is the most the aes-gcm cipher keeps a buffer of its own
// for: larger packets are sealed and opened in pooled buffers, so that an
// idle connection holds no large buffer after traffic (a 32 KiB one per
// direction otherwise, for as long as the connection lives).
const keptBufferSize = 2 << 10

var pooledBuffers [len(poolClasses)]sync.Pool

func init() {
	for i, size := range poolClasses {
		pooledBuffers[i].New = func() any {
			b := make([]byte, size+pooledSlack)
			return &b
		}
	}
}

// pooledBuffer returns a pooled buffer of n <= maxPooledSize bytes, from
// the smallest class that holds it.
func pooledBuffer(n int) []byte {
	for i, size := range poolClasses {
		if n <= size {
			return (*pooledBuffers[i].Get().(*[]byte))[:n]
		}
	}
	return make([]byte, n)
}

// packetBuffer returns a buffer of n bytes for a received packet whose
// message type is msgType: pooled for large channel data packets,
// allocated otherwise.
func packetBuffer(msgType byte, n int) []byte {
	if msgType == msgChannelData && n >= minPooledPacket && n <= dataPacketSize {
		return pooledBuffer(n)
	}
	return make([]byte, n)
}

// releasePacket gives the buffer of p, from p's first byte on, back to the
// pool of its class if it can still hold any packet of that class and is
// no larger than a new buffer of it: a larger one (a buffer not made by
// the pool, or one of a class above worn below its size) would hold a
// packet of this class at more than about twice its size, so it is left
// to the garbage collector. The caller must hold the only reference to p:
// received packets are owned by whoever the transport handed them to, and
// handleData passes that ownership to the channel's buffer.
func releasePacket(p []byte) {
	c := cap(p)
	for i, size := range poolClasses {
		if c >= size && c <= size+pooledSlack {
			p = p[:c]
			pooledBuffers[i].Put(&p)
			return
		}
	}
}

// maxWriteToPackets bounds the packets channel.WriteTo hands to one write.
const maxWriteToPackets = 8

// take waits for received data and moves up to max queued parts out of the
// buffer: their unread bytes, and their packets, which the caller releases
// once it no longer refers to the bytes. It returns io.EOF once the buffer
// is closed and empty, and os.ErrDeadlineExceeded while the channel's read
// deadline has passed (setExpired).
func (b *buffer) take(data net.Buffers, packets [][]byte, max int) (net.Buffers, [][]byte, error) {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()
	if b.expired {
		return data, packets, os.ErrDeadlineExceeded
	}
	for len(data) < max {
		if len(b.head.buf) > 0 {
			data = append(data, b.head.buf)
			if b.head.packet != nil {
				packets = append(packets, b.head.packet)
			}
			b.head.buf, b.head.packet = nil, nil
			continue
		}
		if b.head != b.tail {
			b.head = b.head.next
			continue
		}
		if len(data) > 0 {
			break
		}
		if b.closed {
			return data, packets, io.EOF
		}
		if b.expired {
			return data, packets, os.ErrDeadlineExceeded
		}
		b.Cond.Wait()
	}
	return data, packets, nil
}

// WriteTo writes the channel's data to w until the peer closes it
// (io.WriterTo, which io.Copy uses): the received packets go to w as they
// are, several at once (one writev on a network connection), instead of
// being copied into the caller's buffer by Read.
func (c *channel) WriteTo(w io.Writer) (int64, error) {
	var total int64
	var data net.Buffers
	var packets [][]byte
	for {
		var err error
		data, packets, err = c.pending.take(data[:0], packets[:0], maxWriteToPackets)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		want := int64(0)
		for _, d := range data {
			want += int64(len(d))
		}
		bufs := data // WriteTo consumes bufs; data keeps its capacity
		n, werr := bufs.WriteTo(w)
		for i, p := range packets {
			releasePacket(p)
			packets[i] = nil
		}
		total += n
		if n > 0 {
			// As in ReadExtended: a window adjust that cannot be sent
			// because the channel is closing is not an error here.
			if err := c.adjustWindow(uint32(n)); err != nil && err != io.EOF {
				return total, err
			}
		}
		if werr != nil {
			return total, werr
		}
		if n < want {
			return total, io.ErrShortWrite
		}
	}
}
