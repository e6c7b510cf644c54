package homes

import (
	"crypto/rsa"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// minRSABits is the smallest RSA key accepted (NIST's 128-bit security level).
const minRSABits = 3072

// ParseKey parses one OpenSSH public key line (authorized_keys format) and
// accepts only ed25519, ECDSA and RSA >= 3072 bits, with no options and
// nothing after it. It returns the key and its canonical form (type and
// base64, no comment).
func ParseKey(line string) (ssh.PublicKey, string, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, "", fmt.Errorf("public key is empty; paste one line like \"ssh-ed25519 AAAA... comment\" (home keygen prints one)")
	}
	if len(line) > 16*1024 {
		return nil, "", fmt.Errorf("public key is too long")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, "", fmt.Errorf("give exactly one public key on one line")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, "", fmt.Errorf("not an OpenSSH public key (%v); paste one line like \"ssh-ed25519 AAAA... comment\"", err)
	}
	if len(options) > 0 {
		return nil, "", fmt.Errorf("authorized_keys options (%s) are not allowed; give the bare key", strings.Join(options, ","))
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, "", fmt.Errorf("give exactly one public key")
	}
	switch key.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	case ssh.KeyAlgoRSA:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return nil, "", fmt.Errorf("unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < minRSABits {
			bitsLen := 0
			if ok {
				bitsLen = rk.N.BitLen()
			}
			return nil, "", fmt.Errorf("RSA key has %d bits; use at least %d, or better an ed25519 key (home keygen)", bitsLen, minRSABits)
		}
	default:
		return nil, "", fmt.Errorf("key type %s is not accepted; use ssh-ed25519 (recommended), ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least %d bits", key.Type(), minRSABits)
	}
	canonical := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return key, canonical, nil
}
