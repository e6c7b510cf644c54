package profile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{
		"https://cloud.example.com":      "cloud.example.com",
		"http://127.0.0.1:8000":          "127.0.0.1",
		"https://Cloud.Example.com:8443": "cloud.example.com",
		"http://[::1]:8000":              "ipv6--1",
		"not a url":                      "cloud",
	} {
		if got := DefaultName(in); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFreeDirCountsUp(t *testing.T) {
	base := t.TempDir()
	if got := freeDir(base, "cloud"); got != filepath.Join(base, "cloud") {
		t.Errorf("first = %s", got)
	}
	os.Mkdir(filepath.Join(base, "cloud"), 0o700)
	os.Mkdir(filepath.Join(base, "cloud-2"), 0o700)
	if got := freeDir(base, "cloud"); got != filepath.Join(base, "cloud-3") {
		t.Errorf("third = %s, want cloud-3", got)
	}
}
