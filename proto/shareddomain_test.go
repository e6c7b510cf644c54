package proto

import "testing"

func TestSharedOwner(t *testing.T) {
	const shared = "homes.example.com"
	for host, want := range map[string]string{
		"abcd1234.homes.example.com":          "abcd1234",
		"blog-abcd1234.homes.example.com":     "abcd1234",
		"my-blog-abcd1234.homes.example.com":  "abcd1234",
		"a.abcd1234.homes.example.com":        "",
		"homes.example.com":                   "",
		"abcd1234.homes.example.com.evil.com": "",
		"abcd1234.xhomes.example.com":         "",
		"abcd1234-homes.example.com":          "",
	} {
		got, ok := SharedOwner(host, shared)
		if got != want || ok != (want != "") {
			t.Errorf("SharedOwner(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
	if _, ok := SharedOwner("abcd1234.homes.example.com", ""); ok {
		t.Error("a cloud without a shared domain owns names under it")
	}
	for _, label := range []string{"", "blog", "my-blog"} {
		n := SharedName(label, "abcd1234", shared)
		if got, ok := SharedOwner(n, shared); !ok || got != "abcd1234" {
			t.Errorf("SharedName(%q) = %s, owned by %q", label, n, got)
		}
	}
}

func TestValidateSharedLabel(t *testing.T) {
	for label, ok := range map[string]bool{"": true, "blog": true, "a-b": true, "-a": false, "a-": false, "A": false, "a.b": false, "a_b": false,
		"x23456789012345678901234567890123456789012345678901234": true, "x234567890123456789012345678901234567890123456789012345": false} {
		if err := ValidateSharedLabel(label, "abcd1234"); (err == nil) != ok {
			t.Errorf("%q: %v", label, err)
		}
	}
}
