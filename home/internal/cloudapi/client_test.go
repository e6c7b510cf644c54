package cloudapi

import "testing"

func TestInClear(t *testing.T) {
	for _, tc := range []struct {
		url   string
		clear bool
	}{
		{"http://127.0.0.1:8000", false},
		{"http://localhost:8000", false},
		{"http://[::1]:8000", false},
		{"http://127.0.0.2", false},
		{"https://cloud.example.com", false},
		{"https://203.0.113.7", false},
		{"http://cloud.example.com", true},
		{"http://192.168.1.20:8000", true},
		{"http://[2001:db8::1]:8000", true},
	} {
		c, err := NewWithToken(tc.url, "hp_x")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.InClear(); got != tc.clear {
			t.Errorf("InClear(%s) = %v, want %v", tc.url, got, tc.clear)
		}
	}
}
