//go:build unix

package pooledio

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// rawReads tells that readPooled reads sockets here.
const rawReads = true

// readPooled waits until rc has data, holding no buffer meanwhile, and
// reads it: into dst if not nil (buf is nil then), else into a buffer from
// pool, which it returns (nil on any error) for the caller to give back.
// EOF is io.EOF; a wait ended by a deadline or Close returns that error.
func readPooled(rc syscall.RawConn, pool *sync.Pool, dst []byte) (buf *[]byte, n int, err error) {
	waitErr := rc.Read(func(fd uintptr) bool {
		into := dst
		if into == nil {
			if buf == nil {
				buf = pool.Get().(*[]byte)
			}
			into = *buf
		}
		for {
			n, err = syscall.Read(int(fd), into)
			if err != syscall.EINTR {
				break
			}
		}
		if err == syscall.EAGAIN {
			// Nothing yet: wait without the buffer.
			if buf != nil {
				pool.Put(buf)
				buf = nil
			}
			return false
		}
		return true
	})
	switch {
	case waitErr != nil:
		err = waitErr
	case err != nil:
		err = os.NewSyscallError("read", err)
	case n == 0:
		err = io.EOF
	default:
		return buf, n, nil
	}
	if buf != nil {
		pool.Put(buf)
	}
	return nil, 0, err
}
