package cloudapi

import (
	"strings"
	"testing"

	"homeport.dev/proto"
)

func TestFindPrivateMapping(t *testing.T) {
	ms := []proto.PrivateMapping{
		{Home: "selfslug", Name: "gpu-ui", ID: 7, TunnelPort: 20000},
		{Home: "otherhom", Name: "gpu-ui", ID: 9, TunnelPort: 20016},
		{Home: "otherhom", Name: "42", ID: 11, TunnelPort: 20017},
		{Home: "selfslug", Name: "private-3", ID: 3, TunnelPort: 20001},
	}
	tests := []struct {
		ref    string
		port   int  // 0: not found
		byID   bool // found by the deprecated ID
		errHas []string
	}{
		{ref: "gpu-ui", port: 20000},
		{ref: "selfslug/gpu-ui", port: 20000},
		{ref: "otherhom/gpu-ui", port: 20016},
		{ref: "private-3", port: 20001},
		{ref: "otherhom/42", port: 20017},
		{ref: "9", port: 20016, byID: true},
		{ref: "42", port: 0, errHas: []string{"this home (selfslug) has no private mapping named 42", "gpu-ui, otherhom/gpu-ui, otherhom/42, private-3"}},
		{ref: "nope", errHas: []string{"no private mapping named nope", "your account has: gpu-ui, otherhom/gpu-ui"}},
		{ref: "otherhom/nope", errHas: []string{`home "otherhom" has no private mapping named nope`}},
		{ref: "GPU", errHas: []string{"not NAME or HOME/NAME"}},
		{ref: "a/b/c", errHas: []string{"not NAME or HOME/NAME"}},
		{ref: "", errHas: []string{"not NAME or HOME/NAME"}},
		{ref: "gpu\n-ui", errHas: []string{`"gpu\n-ui"`}},
	}
	for _, tt := range tests {
		m, byID, err := FindPrivateMapping(ms, "selfslug", tt.ref)
		if tt.errHas != nil {
			if err == nil {
				t.Errorf("%q: found %+v, want an error", tt.ref, m)
				continue
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q: error %q lacks %q", tt.ref, err, s)
				}
			}
			continue
		}
		if err != nil || m.TunnelPort != tt.port || byID != tt.byID {
			t.Errorf("%q: %+v byID=%v %v, want port %d byID=%v", tt.ref, m, byID, err, tt.port, tt.byID)
		}
	}
	if _, _, err := FindPrivateMapping(nil, "selfslug", "gpu-ui"); err == nil || !strings.Contains(err.Error(), "your account has none") {
		t.Errorf("with no private mappings: %v", err)
	}
}
