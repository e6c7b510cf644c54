package homeauth

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	r := Request{Slug: "abcd1234", Time: time.Unix(1700000000, 0), Nonce: strings.Repeat("0f", 16), Format: "ssh-ed25519", Blob: []byte{1, 2, 3, 250}}
	got, err := Parse(r.Header())
	if err != nil {
		t.Fatal(err)
	}
	if got.Slug != r.Slug || !got.Time.Equal(r.Time) || got.Nonce != r.Nonce || got.Format != r.Format || !bytes.Equal(got.Blob, r.Blob) {
		t.Fatalf("round trip: %+v != %+v", got, r)
	}
}

func TestParseRefuses(t *testing.T) {
	nonce := strings.Repeat("ab", 16)
	for name, h := range map[string]string{
		"bearer":       "Bearer hp_x",
		"no slug":      Scheme + " ts=1, nonce=" + nonce + ", sig=ssh-ed25519:AQ",
		"bad slug":     Scheme + " slug=ab/../x, ts=1, nonce=" + nonce + ", sig=ssh-ed25519:AQ",
		"bad ts":       Scheme + " slug=abc, ts=x, nonce=" + nonce + ", sig=ssh-ed25519:AQ",
		"short nonce":  Scheme + " slug=abc, ts=1, nonce=ab, sig=ssh-ed25519:AQ",
		"upper nonce":  Scheme + " slug=abc, ts=1, nonce=" + strings.ToUpper(nonce) + ", sig=ssh-ed25519:AQ",
		"no format":    Scheme + " slug=abc, ts=1, nonce=" + nonce + ", sig=AQ",
		"bad base64":   Scheme + " slug=abc, ts=1, nonce=" + nonce + ", sig=ssh-ed25519:!!",
		"twice":        Scheme + " slug=abc, slug=abd, ts=1, nonce=" + nonce + ", sig=ssh-ed25519:AQ",
		"newline slug": Scheme + " slug=a\nb, ts=1, nonce=" + nonce + ", sig=ssh-ed25519:AQ",
		"too long":     Scheme + " slug=abc, ts=1, nonce=" + nonce + ", sig=ssh-ed25519:" + strings.Repeat("A", 3000),
	} {
		if _, err := Parse(h); err == nil {
			t.Errorf("%s: %q parsed", name, h)
		}
	}
}

func TestMessageBindsEveryField(t *testing.T) {
	at := time.Unix(1700000000, 0)
	base := Message("abc", "POST", "/api/v1/homes/abc/mappings", at, "n", []byte(`{}`))
	for name, m := range map[string][]byte{
		"slug":   Message("abd", "POST", "/api/v1/homes/abc/mappings", at, "n", []byte(`{}`)),
		"method": Message("abc", "DELETE", "/api/v1/homes/abc/mappings", at, "n", []byte(`{}`)),
		"uri":    Message("abc", "POST", "/api/v1/homes/abc/mappings?x=1", at, "n", []byte(`{}`)),
		"time":   Message("abc", "POST", "/api/v1/homes/abc/mappings", at.Add(time.Second), "n", []byte(`{}`)),
		"nonce":  Message("abc", "POST", "/api/v1/homes/abc/mappings", at, "m", []byte(`{}`)),
		"body":   Message("abc", "POST", "/api/v1/homes/abc/mappings", at, "n", []byte(`{ }`)),
	} {
		if bytes.Equal(base, m) {
			t.Errorf("changing the %s leaves the signed message the same", name)
		}
	}
}

func TestCheckTime(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for d, ok := range map[time.Duration]bool{0: true, MaxSkew: true, -MaxSkew: true, MaxSkew + time.Second: false, -MaxSkew - time.Second: false} {
		if err := (Request{Time: now.Add(d)}).CheckTime(now); (err == nil) != ok {
			t.Errorf("skew %s: err %v", d, err)
		}
	}
}
