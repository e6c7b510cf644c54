//go:build unix

package testnet

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on path; ok is false
// when another holder has it.
func lockFile(path string) (unlock func(), ok bool) {
	os.MkdirAll(filepath.Dir(path), 0o777)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
