package haproxy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"homeport.dev/proto"
)

// FuzzRuntimeInput checks the one gate in front of the runtime socket and
// the map files: whatever passes it is made of bytes HAProxy's command
// parser cannot split or comment on, a command built from it has exactly
// the words it was built from, a map file written with it reads back the
// same, and every host name the API accepts passes it.
func FuzzRuntimeInput(f *testing.F) {
	for _, s := range [][3]string{
		{"app.example.com", "20001", "/var/lib/cloud/haproxy/https.map"}, {"10001", "20003", "#1"}, {"a", "1", "#"},
		{"a;clear map x", "1", "/m.map"}, {"a.com", "80 ", "/m map"}, {"a.com", "080", "#-1"}, {"0", "1", "/x\n"},
		{"App.com", "65536", "relative.map"}, {"a.com\nclear map /m.map", "1", "/m.map;x"}, {"1.2.3.4", "65535", "/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, key, value, mapName string) {
		if proto.ValidateHostname(key) == nil && validateKey(key) != nil {
			t.Fatalf("the API accepts the host %q but the map refuses it", key)
		}
		if validateMapName(mapName) == nil {
			if strings.ContainsAny(mapName, " \t\r\n;\\\x00") || strings.Contains(mapName[1:], "#") {
				t.Fatalf("map name %q accepted with a separator", mapName)
			}
		}
		e := Entry{Key: key, Value: value}
		if e.Validate() != nil {
			return
		}
		for _, s := range []string{key, value} {
			if strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
				t.Fatalf("Entry{%q, %q} accepted with bytes outside [a-z0-9.-]", key, value)
			}
		}
		if n, err := strconv.Atoi(value); err != nil || strconv.Itoa(n) != value || n < 1 || n > 65535 {
			t.Fatalf("value %q accepted: not a canonical port", value)
		}
		if n, err := strconv.Atoi(key); err == nil && (strconv.Itoa(n) != key || n < 1 || n > 65535) {
			t.Fatalf("numeric key %q accepted: not a canonical port", key)
		}
		if got := strings.Fields("add map /m.map " + key + " " + value); len(got) != 5 || got[3] != key || got[4] != value {
			t.Fatalf("add map command with Entry{%q, %q} splits into %q", key, value, got)
		}
		if err := WriteMap(dir, MapTCP, []Entry{e}); err != nil {
			t.Fatalf("WriteMap(%+v): %v", e, err)
		}
		back, err := ReadMap(dir, MapTCP)
		if err != nil || !slices.Equal(back, []Entry{e}) {
			t.Fatalf("map file with %+v reads back as %+v, %v", e, back, err)
		}
	})
}
