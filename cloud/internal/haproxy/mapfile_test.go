package haproxy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWriteMapsSortedAndReadable(t *testing.T) {
	dir := t.TempDir()
	err := WriteMaps(dir, map[Map][]Entry{
		MapHTTPS: {{"b.example.com", "20002"}, {"a.example.com", "20001"}},
		MapTCP:   {{"10001", "20003"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(MapPath(dir, MapHTTPS))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a.example.com 20001\nb.example.com 20002\n"; string(data) != want {
		t.Errorf("https.map = %q, want %q", data, want)
	}
	for m, want := range map[Map][]Entry{
		MapHTTPS: {{"a.example.com", "20001"}, {"b.example.com", "20002"}},
		MapHTTP:  nil, // absent from the argument: written empty
		MapTCP:   {{"10001", "20003"}},
	} {
		got, err := ReadMap(dir, m)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ReadMap(%s) = %v, %v; want %v", m, got, err, want)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestWriteMapRejectsInvalidAndKeepsFile(t *testing.T) {
	dir := t.TempDir()
	good := []Entry{{"a.example.com", "20001"}}
	if err := WriteMap(dir, MapHTTP, good); err != nil {
		t.Fatal(err)
	}
	err := WriteMap(dir, MapHTTP, []Entry{{"ok.example.com", "1"}, {"a\nb.example.com", "1"}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteMap with a newline in a key = %v, want ErrInvalid", err)
	}
	if got, _ := ReadMap(dir, MapHTTP); !reflect.DeepEqual(got, good) {
		t.Errorf("file changed to %v after a rejected write", got)
	}
	if err := WriteMaps(dir, map[Map][]Entry{"ssh": nil}); !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteMaps with an unknown map = %v, want ErrInvalid", err)
	}
}
