//go:build !unix

package pooledio

import (
	"errors"
	"sync"
	"syscall"
)

// rawReads is false: on this system (Windows) a socket's descriptor is not
// read with read(2), so NewConn leaves connections as they are and Copy
// holds one buffer for the whole copy.
const rawReads = false

// readPooled is not called here (rawConnOf finds no RawConn to read).
func readPooled(rc syscall.RawConn, pool *sync.Pool, dst []byte) (buf *[]byte, n int, err error) {
	return nil, 0, errors.ErrUnsupported
}
