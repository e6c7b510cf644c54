package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
)

// The layout of the profile's certificates directory (mode 0700; private
// keys 0600; nothing here ever leaves the home):
//
//	certs/<domain>/fullchain.pem   the certificate and its chain
//	certs/<domain>/privkey.pem     its private key
//	certs/<domain>/meta.json       which CA issued it, by which challenge
//	certs/acme/<ca>/account.key    the ACME account key for that CA
const (
	fullchainFile = "fullchain.pem"
	privkeyFile   = "privkey.pem"
	metaFile      = "meta.json"
	accountFile   = "account.key"
)

// meta is what the home remembers about a certificate besides the PEMs.
type meta struct {
	CA        string    `json:"ca"`
	Challenge string    `json:"challenge"`
	IssuedAt  time.Time `json:"issued_at"`
}

// stored is a certificate as the home keeps it.
type stored struct {
	cert  *tls.Certificate // Leaf set
	chain []byte           // fullchain PEM
	key   []byte           // private key PEM
	meta  meta
}

func (s *stored) leaf() *x509.Certificate { return s.cert.Leaf }

// store reads and writes the certificates directory.
type store struct{ dir string }

func (s store) domainDir(domain string) (string, error) {
	// Names are validated hostnames before they get here; check again
	// since they become path elements.
	if err := proto.ValidateHostname(domain); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, domain), nil
}

// init creates the directory (0700) and tightens it if it exists.
func (s store) init() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("certificates directory: %w", err)
	}
	return os.Chmod(s.dir, 0o700)
}

// load reads the certificate of domain; a missing one is (nil, nil).
func (s store) load(domain string) (*stored, error) {
	dir, err := s.domainDir(domain)
	if err != nil {
		return nil, err
	}
	chain, err := os.ReadFile(filepath.Join(dir, fullchainFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, privkeyFile))
	if err != nil {
		return nil, err
	}
	st, err := parsePair(domain, chain, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, metaFile)); err == nil {
		json.Unmarshal(b, &st.meta)
	}
	return st, nil
}

// all loads every stored certificate; broken ones are reported in errs
// and skipped (they are obtained again).
func (s store) all() (map[string]*stored, []error) {
	out := map[string]*stored{}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return out, []error{err}
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || proto.ValidateHostname(e.Name()) != nil {
			continue
		}
		st, err := s.load(e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st != nil {
			out[e.Name()] = st
		}
	}
	return out, errs
}

// save writes a certificate: the key first, then the chain, then the
// metadata, each atomically. A crash in between leaves a key that does
// not match the chain, which load refuses (and the home obtains a new one)
// rather than serving a broken pair.
func (s store) save(domain string, st *stored) error {
	dir, err := s.domainDir(domain)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	m, err := json.MarshalIndent(st.meta, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, privkeyFile), st.key, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, fullchainFile), st.chain, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, metaFile), append(m, '\n'), 0o600)
}

// deploy copies a certificate to dir/fullchain.pem and dir/privkey.pem
// (0600), each replaced atomically, for services that read them.
func deploy(dir string, st *stored) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, privkeyFile), st.key, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, fullchainFile), st.chain, 0o600)
}

// accountKey loads the ACME account key for caURL, creating it (0600) on
// first use: one account per profile and CA.
func (s store) accountKey(caURL string) (crypto.Signer, error) {
	dir := filepath.Join(s.dir, "acme", caDirName(caURL))
	path := filepath.Join(dir, accountFile)
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s holds no PEM key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", path)
		}
		return signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return s.accountKey(caURL) // another process of the profile made it first
		}
		return nil, err
	}
	return key, nil
}

// caDirName names a CA's directory after its URL: host and path, with
// anything but letters, digits, dots and dashes as "_".
func caDirName(caURL string) string {
	u, err := url.Parse(caURL)
	name := caURL
	if err == nil {
		name = u.Host + u.Path
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, name)
}

// newKey is the private key of a new certificate (a fresh one per
// issuance, renewals included).
func newKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// parsePair checks that chain and key belong together and that the leaf
// names domain.
func parsePair(domain string, chain, key []byte) (*stored, error) {
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	if err := cert.Leaf.VerifyHostname(domain); err != nil {
		return nil, err
	}
	return &stored{cert: &cert, chain: chain, key: key}, nil
}

// Stored reads the certificates kept in dir, by name, without a Manager
// (for `home status` when no console runs). Managed is left false.
func Stored(dir string) ([]Info, error) {
	all, errs := store{dir: dir}.all()
	out := make([]Info, 0, len(all))
	for name, st := range all {
		l := st.leaf()
		out = append(out, Info{Domain: name, State: Valid, NotBefore: l.NotBefore, NotAfter: l.NotAfter,
			Issuer: issuerName(l), Serial: l.SerialNumber.Text(16), Challenge: st.meta.Challenge,
			RenewAt: renewAt(l.NotBefore, l.NotAfter, DefaultRenewWindow)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, errors.Join(errs...)
}
