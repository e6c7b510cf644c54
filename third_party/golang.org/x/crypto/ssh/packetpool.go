// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import "sync"

// Homeport patch (third_party/README.md): received channel data is copied
// out of the cipher's buffer into a pooled buffer, which the channel hands
// back once the reader has consumed it. Upstream allocates a fresh 32 KiB
// slice per packet instead; at tunnel speeds the garbage collector and the
// page faults of those allocations cost more CPU than decryption.

// dataPacketSize holds the largest channel data packet this side accepts:
// message type, recipient channel and length (9 bytes), then at most
// channelMaxPacket bytes of data (handleData refuses more).
const dataPacketSize = 9 + channelMaxPacket

var dataPackets = sync.Pool{New: func() any {
	b := make([]byte, dataPacketSize)
	return &b
}}

// minPooledPacket is the smallest packet given a pooled buffer: the channel
// window limits the bytes a peer may have waiting, not the packets, so
// pooling small packets would let a peer pin a whole buffer per byte sent.
// Above half the buffer, memory held is at most twice the data.
const minPooledPacket = dataPacketSize / 2

// packetBuffer returns a buffer of n bytes for a received packet whose
// message type is msgType: pooled for large channel data packets,
// allocated otherwise.
func packetBuffer(msgType byte, n int) []byte {
	if msgType == msgChannelData && n >= minPooledPacket && n <= dataPacketSize {
		return (*dataPackets.Get().(*[]byte))[:n]
	}
	return make([]byte, n)
}

// releasePacket gives p back to the pool if it has the pool's size. The
// caller must hold the only reference to p: received packets are owned by
// whoever the transport handed them to, and handleData passes that
// ownership to the channel's buffer.
func releasePacket(p []byte) {
	if cap(p) != dataPacketSize {
		return
	}
	p = p[:dataPacketSize]
	dataPackets.Put(&p)
}
