// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import "sync"

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

// minPooledPacket is the smallest packet given a pooled buffer: the channel
// window limits the bytes a peer may have waiting, not the packets, so
// pooling small packets would let a peer pin a whole buffer per byte sent.
// Above half the buffer, memory held is at most twice the data.
const minPooledPacket = dataPacketSize / 2

// maxPooledSize is the most a pooled buffer is asked to hold: the largest
// data packet as aes-gcm receives it (padding length, packet, at most 255
// bytes of padding, tag). Smaller buffers are not pooled again.
const maxPooledSize = 1 + dataPacketSize + 255 + gcmTagSize

// pooledBufferSize is the capacity of a new pooled buffer. A packet
// decrypted in place by aes-gcm starts one byte into its buffer (after the
// padding length), so the buffer given back is one byte shorter each use;
// the extra room lets it serve a thousand packets before it is dropped.
const pooledBufferSize = maxPooledSize + 1024

var pooledBuffers = sync.Pool{New: func() any {
	b := make([]byte, pooledBufferSize)
	return &b
}}

// pooledBuffer returns a pooled buffer of n <= maxPooledSize bytes.
func pooledBuffer(n int) []byte {
	return (*pooledBuffers.Get().(*[]byte))[:n]
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
// pool if it can still hold any pooled packet. The caller must hold the
// only reference to p: received packets are owned by whoever the transport
// handed them to, and handleData passes that ownership to the channel's
// buffer.
func releasePacket(p []byte) {
	if cap(p) < maxPooledSize {
		return
	}
	p = p[:cap(p)]
	pooledBuffers.Put(&p)
}
