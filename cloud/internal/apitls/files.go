package apitls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// recheck is how often, at most, handshakes look at the operator's files.
const recheck = time.Second

// fileCert is the operator's certificate (--tls-cert/--tls-key), re-read
// when either file changes (fileStamp), so a renewal by an
// outside tool (certbot, a deploy hook) takes effect without a restart. A
// broken new pair is logged and the previous one stays in service.
type fileCert struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

// fileStamp tells a file's versions apart: its size and modification time,
// and its inode and change time, since the modification time moves by the
// kernel's clock tick (4 ms here): a pair replaced within a tick of the
// previous one, same sizes, kept its stamp and was never re-read. A
// replacement by rename (certbot, deploy hooks) always gets a new inode.
type fileStamp struct {
	size       int64
	mod        time.Time
	ino        uint64
	ctimeNanos int64
}

func newFileCert(certFile, keyFile string, log *slog.Logger) (*fileCert, error) {
	f := &fileCert{certFile: certFile, keyFile: keyFile, log: log}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// get is tls.Config.GetCertificate.
func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) >= recheck {
		f.checked = time.Now()
		if f.stamps() != f.stamp {
			if err := f.loadLocked(); err != nil {
				f.log.Error("the changed certificate files are not usable; keeping the previous certificate", "cert", f.certFile, "key", f.keyFile, "err", err)
			}
		}
	}
	return f.cert, nil
}

func (f *fileCert) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = time.Now()
	return f.loadLocked()
}

func (f *fileCert) loadLocked() error {
	stamp := f.stamps()
	c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		f.stamp = stamp // not again until the files change once more
		return fmt.Errorf("--tls-cert %s, --tls-key %s: %w", f.certFile, f.keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			f.stamp = stamp
			return fmt.Errorf("--tls-cert %s: %w", f.certFile, err)
		}
	}
	if f.cert != nil {
		f.log.Info("certificate files changed; serving the new certificate", "cert", f.certFile, "not_after", c.Leaf.NotAfter)
	}
	f.cert, f.stamp = &c, stamp
	return nil
}

func (f *fileCert) stamps() [2]fileStamp {
	var out [2]fileStamp
	for i, p := range []string{f.certFile, f.keyFile} {
		if st, err := os.Stat(p); err == nil {
			out[i] = fileStamp{size: st.Size(), mod: st.ModTime()}
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				out[i].ino, out[i].ctimeNanos = uint64(sys.Ino), sys.Ctim.Nano()
			}
		}
	}
	return out
}
