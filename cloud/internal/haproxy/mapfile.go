package haproxy

import (
	"bufio"
	"bytes"
	"fmt"
	"homeport.dev/proto/atomicfile"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Map is the short name of one routing map.
type Map string

// The routing maps. Keys of MapHTTPS and MapHTTP are hostnames, keys of MapTCP
// are public ports; every value is a tunnel port. MapRaw is not a route but
// a property of one: it lists (key and value alike) the tunnel ports whose
// connections go without the PROXY v2 header.
const (
	MapHTTPS Map = "https" // SNI -> tunnel port
	MapHTTP  Map = "http"  // Host -> tunnel port
	MapTCP   Map = "tcp"   // public port -> tunnel port
	MapRaw   Map = "raw"   // tunnel port -> itself: no PROXY header
)

// Maps lists every map the configuration loads.
func Maps() []Map { return []Map{MapHTTPS, MapHTTP, MapTCP, MapRaw} }

// MapPath is the file of map m in dir. It is also the map's name on the
// runtime API, since HAProxy names a map after the file it was loaded from.
func MapPath(dir string, m Map) string {
	return filepath.Join(dir, string(m)+".map")
}

// WriteMap atomically replaces the file of map m in dir with entries, sorted
// by key. Invalid entries are rejected and nothing is written.
func WriteMap(dir string, m Map, entries []Entry) error {
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("map %s: %w", m, err)
		}
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int {
		return strings.Compare(a.Key, b.Key)
	})
	var b bytes.Buffer
	for _, e := range sorted {
		b.WriteString(e.Key)
		b.WriteByte(' ')
		b.WriteString(e.Value)
		b.WriteByte('\n')
	}
	return atomicfile.Write(MapPath(dir, m), b.Bytes(), 0o640)
}

// WriteMaps writes the full routing state: every map in [Maps], a map absent
// from maps being written empty. HAProxy refuses to start without every
// file (a data directory from before raw.map gets it here), and a restart
// loads exactly what was last written.
func WriteMaps(dir string, maps map[Map][]Entry) error {
	for m := range maps {
		if !slices.Contains(Maps(), m) {
			return fmt.Errorf("%w: unknown map %q", ErrInvalid, m)
		}
	}
	for _, m := range Maps() {
		if err := WriteMap(dir, m, maps[m]); err != nil {
			return err
		}
	}
	return nil
}

// ReadMap returns the entries in the file of map m in dir, in file order.
// Blank lines and '#' comments are skipped, as HAProxy does.
func ReadMap(dir string, m Map) ([]Entry, error) {
	data, err := os.ReadFile(MapPath(dir, m))
	if err != nil {
		return nil, fmt.Errorf("haproxy: read map: %w", err)
	}
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("haproxy: %s line %d: no value", MapPath(dir, m), n)
		}
		entries = append(entries, Entry{Key: key, Value: strings.TrimSpace(value)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("haproxy: read %s: %w", MapPath(dir, m), err)
	}
	return entries, nil
}
