package mappings

import (
	"testing"

	"homeport.dev/proto"
)

func TestCheck(t *testing.T) {
	block := proto.PortRange{First: 10010, Last: 10019}
	tests := []struct {
		name string
		req  proto.MappingRequest
		ok   bool
	}{
		{"https host", proto.MappingRequest{Scheme: "https", Host: "app.example.com"}, true},
		{"host normalised", proto.MappingRequest{Scheme: "http", Host: " App.Example.com "}, true},
		{"tcp in block", proto.MappingRequest{Scheme: "tcp", PublicPort: 10019}, true},
		{"private tcp", proto.MappingRequest{Name: "gpu-ui", Scheme: "tcp", Private: true}, true},
		{"private https", proto.MappingRequest{Name: "gpu", Scheme: "https", Host: "gpu.example.com", Private: true}, true},
		{"private without a name", proto.MappingRequest{Scheme: "tcp", Private: true}, false},
		{"private with a bad name", proto.MappingRequest{Name: "GPU UI", Scheme: "tcp", Private: true}, false},
		{"public with a name", proto.MappingRequest{Name: "web", Scheme: "https", Host: "app.example.com"}, true},
		{"public with a bad name", proto.MappingRequest{Name: "-web", Scheme: "https", Host: "app.example.com"}, false},
		{"tcp below block", proto.MappingRequest{Scheme: "tcp", PublicPort: 10009}, false},
		{"tcp above block", proto.MappingRequest{Scheme: "tcp", PublicPort: 10020}, false},
		{"tcp no port", proto.MappingRequest{Scheme: "tcp"}, false},
		{"tcp with host", proto.MappingRequest{Scheme: "tcp", Host: "a.example.com", PublicPort: 10010}, false},
		{"https with port", proto.MappingRequest{Scheme: "https", Host: "a.example.com", PublicPort: 10010}, false},
		{"https no host", proto.MappingRequest{Scheme: "https"}, false},
		{"bad scheme", proto.MappingRequest{Scheme: "HTTP", Host: "a.example.com"}, false},
		{"injection", proto.MappingRequest{Scheme: "http", Host: "a;clear map x"}, false},
	}
	for _, tt := range tests {
		got, err := Check(tt.req, block, "")
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if tt.name == "host normalised" && got.Host != "app.example.com" {
			t.Errorf("host = %q, want it normalised", got.Host)
		}
	}
}
