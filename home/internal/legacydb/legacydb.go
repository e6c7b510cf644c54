// Package legacydb reads the rows of one table of an SQLite database file,
// in pure Go and read-only: enough to convert the entries database that
// home profiles kept before config.yaml held their forwards, without
// linking an SQLite engine (and cgo) into the agent for a one-time job.
//
// It follows the file format (https://sqlite.org/fileformat2.html): the
// table b-tree found through sqlite_schema, records with every serial type,
// overflow pages, and the write-ahead log beside the file (frames up to its
// last valid commit win over the pages in the file, as SQLite reads them).
// Indexes, free lists and writing are not needed and not handled.
package legacydb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// Row is one row: column name to value (int64, float64, string, []byte or
// nil). A column missing from an old record (added later with ALTER TABLE)
// is absent from the map.
type Row map[string]any

// ReadTable returns every row of table in the database file at path, in
// rowid order. An INTEGER PRIMARY KEY column holds the rowid.
func ReadTable(path, table string) ([]Row, error) {
	f, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	root, sql := 0, ""
	err = f.scan(1, func(_ int64, rec []any) error {
		if len(rec) >= 5 && str(rec[0]) == "table" && strings.EqualFold(str(rec[1]), table) {
			root, sql = int(num(rec[3])), str(rec[4])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: reading its schema: %w", path, err)
	}
	if root == 0 {
		return nil, fmt.Errorf("%s has no table %s", path, table)
	}
	cols, rowidCol, err := columns(sql)
	if err != nil {
		return nil, fmt.Errorf("%s: table %s: %w", path, table, err)
	}
	var rows []Row
	err = f.scan(root, func(rowid int64, rec []any) error {
		r := Row{}
		for i, c := range cols {
			if i < len(rec) {
				r[c] = rec[i]
			}
		}
		if rowidCol >= 0 {
			r[cols[rowidCol]] = rowid
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: table %s: %w", path, table, err)
	}
	return rows, nil
}

type file struct {
	data     []byte
	pageSize int
	usable   int
	wal      map[int][]byte // page number -> the page's last committed frame
	pages    int
}

func open(path string) (*file, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 100 || !bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		return nil, errors.New("not an SQLite 3 database")
	}
	f := &file{data: data, pageSize: int(binary.BigEndian.Uint16(data[16:]))}
	if f.pageSize == 1 {
		f.pageSize = 65536
	}
	if f.pageSize < 512 || f.pageSize&(f.pageSize-1) != 0 {
		return nil, fmt.Errorf("page size %d is not a power of two from 512", f.pageSize)
	}
	f.usable = f.pageSize - int(data[20])
	f.pages = len(data) / f.pageSize
	if wal, err := os.ReadFile(path + "-wal"); err == nil {
		if err := f.readWAL(wal); err != nil {
			return nil, fmt.Errorf("%s-wal: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return f, nil
}

// readWAL keeps the frames of every transaction the log committed: frames
// whose salts match the header and whose running checksum is right, up to
// the last commit frame among them.
func (f *file) readWAL(w []byte) error {
	if len(w) < 32 {
		return nil // empty: nothing was written since the last checkpoint
	}
	magic := binary.BigEndian.Uint32(w)
	if magic&^1 != 0x377f0682 {
		return errors.New("not an SQLite write-ahead log")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	if int(binary.BigEndian.Uint32(w[8:])) != f.pageSize {
		return errors.New("its page size is not the database's")
	}
	s0, s1 := checksum(order, w[:24], 0, 0)
	if s0 != binary.BigEndian.Uint32(w[24:]) || s1 != binary.BigEndian.Uint32(w[28:]) {
		return nil // a log with a broken header holds nothing valid
	}
	salt := w[16:24]
	committed := map[int][]byte{}
	pending := map[int][]byte{}
	for off := 32; off+24+f.pageSize <= len(w); off += 24 + f.pageSize {
		h, page := w[off:off+24], w[off+24:off+24+f.pageSize]
		if !bytes.Equal(h[8:16], salt) {
			break
		}
		s0, s1 = checksum(order, h[:8], s0, s1)
		s0, s1 = checksum(order, page, s0, s1)
		if s0 != binary.BigEndian.Uint32(h[16:]) || s1 != binary.BigEndian.Uint32(h[20:]) {
			break
		}
		pending[int(binary.BigEndian.Uint32(h))] = page
		if size := int(binary.BigEndian.Uint32(h[4:])); size != 0 {
			for n, p := range pending {
				committed[n] = p
			}
			clear(pending)
			f.pages = size
		}
	}
	f.wal = committed
	return nil
}

func checksum(order binary.ByteOrder, b []byte, s0, s1 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s0 += order.Uint32(b[i:]) + s1
		s1 += order.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}

func (f *file) page(n int) ([]byte, error) {
	if n < 1 || n > f.pages {
		return nil, fmt.Errorf("page %d is outside the database (%d pages)", n, f.pages)
	}
	if p, ok := f.wal[n]; ok {
		return p, nil
	}
	off := (n - 1) * f.pageSize
	if off+f.pageSize > len(f.data) {
		return nil, fmt.Errorf("page %d is beyond the end of the file", n)
	}
	return f.data[off : off+f.pageSize], nil
}

// scan calls fn for every row of the table b-tree rooted at page root.
func (f *file) scan(root int, fn func(rowid int64, rec []any) error) error {
	return f.walk(root, 0, fn)
}

func (f *file) walk(n, depth int, fn func(int64, []any) error) error {
	if depth > 64 {
		return errors.New("the b-tree is deeper than any real one: the file is damaged")
	}
	p, err := f.page(n)
	if err != nil {
		return err
	}
	hdr := 0
	if n == 1 {
		hdr = 100
	}
	if len(p) < hdr+12 {
		return fmt.Errorf("page %d is too short", n)
	}
	kind, cells := p[hdr], int(binary.BigEndian.Uint16(p[hdr+3:]))
	ptrs := hdr + 8
	if kind == 0x05 {
		ptrs = hdr + 12
	}
	if ptrs+2*cells > len(p) {
		return fmt.Errorf("page %d: cell pointers run past its end", n)
	}
	for i := 0; i < cells; i++ {
		off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
		if off >= len(p) {
			return fmt.Errorf("page %d: cell %d is outside the page", n, i)
		}
		switch kind {
		case 0x05: // interior: left child, then the key
			if off+4 > len(p) {
				return fmt.Errorf("page %d: cell %d is cut short", n, i)
			}
			if err := f.walk(int(binary.BigEndian.Uint32(p[off:])), depth+1, fn); err != nil {
				return err
			}
		case 0x0d:
			rowid, rec, err := f.leafCell(p, off)
			if err != nil {
				return fmt.Errorf("page %d cell %d: %w", n, i, err)
			}
			if err := fn(rowid, rec); err != nil {
				return err
			}
		default:
			return fmt.Errorf("page %d is not a table b-tree page (type %d)", n, kind)
		}
	}
	if kind == 0x05 {
		return f.walk(int(binary.BigEndian.Uint32(p[hdr+8:])), depth+1, fn)
	}
	return nil
}

func (f *file) leafCell(p []byte, off int) (int64, []any, error) {
	size, k := varint(p[off:])
	off += k
	rowid, k := varint(p[off:])
	off += k
	if k == 0 || size > 1<<30 {
		return 0, nil, errors.New("bad cell header")
	}
	payload, err := f.payload(p, off, int(size))
	if err != nil {
		return 0, nil, err
	}
	rec, err := record(payload)
	return int64(rowid), rec, err
}

// payload gathers a cell's payload, following its overflow pages.
func (f *file) payload(p []byte, off, size int) ([]byte, error) {
	u := f.usable
	local := size
	if x := u - 35; size > x {
		m := (u-12)*32/255 - 23
		local = m + (size-m)%(u-4)
		if local > x {
			local = m
		}
	}
	if off+local > len(p) {
		return nil, errors.New("payload runs past the page")
	}
	out := append([]byte(nil), p[off:off+local]...)
	if local == size {
		return out, nil
	}
	if off+local+4 > len(p) {
		return nil, errors.New("overflow pointer runs past the page")
	}
	next := int(binary.BigEndian.Uint32(p[off+local:]))
	for hops := 0; len(out) < size; hops++ {
		if next == 0 || hops > f.pages {
			return nil, errors.New("the overflow chain ends early")
		}
		op, err := f.page(next)
		if err != nil {
			return nil, err
		}
		n := min(size-len(out), u-4)
		out = append(out, op[4:4+n]...)
		next = int(binary.BigEndian.Uint32(op))
	}
	return out, nil
}

// record decodes an SQLite record into its values.
func record(b []byte) ([]any, error) {
	hsize, k := varint(b)
	if k == 0 || int(hsize) > len(b) || int(hsize) < k {
		return nil, errors.New("bad record header")
	}
	var types []uint64
	for pos := k; pos < int(hsize); {
		t, n := varint(b[pos:int(hsize)])
		if n == 0 {
			return nil, errors.New("bad record header")
		}
		types, pos = append(types, t), pos+n
	}
	body := b[hsize:]
	vals := make([]any, 0, len(types))
	for _, t := range types {
		n := 0
		switch {
		case t <= 4:
			n = int(t)
		case t == 5:
			n = 6
		case t == 6, t == 7:
			n = 8
		case t >= 12:
			n = int(t-12) / 2
		}
		if n > len(body) {
			return nil, errors.New("record body cut short")
		}
		v := body[:n]
		body = body[n:]
		switch {
		case t == 0:
			vals = append(vals, nil)
		case t <= 6:
			var x int64
			for _, c := range v {
				x = x<<8 | int64(c)
			}
			if shift := 64 - 8*uint(n); n > 0 {
				x = x << shift >> shift // sign-extend
			}
			vals = append(vals, x)
		case t == 7:
			vals = append(vals, math.Float64frombits(binary.BigEndian.Uint64(v)))
		case t == 8, t == 9:
			vals = append(vals, int64(t-8))
		case t >= 12 && t%2 == 0:
			vals = append(vals, append([]byte(nil), v...))
		case t >= 13:
			vals = append(vals, string(v))
		default:
			return nil, fmt.Errorf("reserved serial type %d", t)
		}
	}
	return vals, nil
}

// varint decodes SQLite's big-endian variable-length integer; n is 0 when b
// is too short.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return v, 9
}

// columns lists the column names of a CREATE TABLE statement, and which
// one (or -1) is an INTEGER PRIMARY KEY, the rowid's alias.
func columns(sql string) ([]string, int, error) {
	open, end := strings.IndexByte(sql, '('), strings.LastIndexByte(sql, ')')
	if open < 0 || end < open {
		return nil, -1, fmt.Errorf("cannot read its definition %q", sql)
	}
	var defs []string
	depth, quote, start := 0, byte(0), open+1
	for i := open + 1; i < end; i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '`' || c == '"' || c == '\'' || c == '[':
			quote = c
			if c == '[' {
				quote = ']'
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			defs, start = append(defs, sql[start:i]), i+1
		}
	}
	defs = append(defs, sql[start:end])
	var cols []string
	rowid := -1
	for _, d := range defs {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		word := strings.ToUpper(strings.Fields(d + " ")[0])
		switch word {
		case "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN":
			continue
		}
		name, rest := d, ""
		if q := d[0]; q == '`' || q == '"' || q == '[' {
			closeQ := q
			if q == '[' {
				closeQ = ']'
			}
			i := strings.IndexByte(d[1:], closeQ)
			if i < 0 {
				return nil, -1, fmt.Errorf("cannot read column %q", d)
			}
			name, rest = d[1:1+i], d[2+i:]
		} else if f := strings.Fields(d); len(f) > 0 {
			name, rest = f[0], strings.TrimPrefix(d, f[0])
		}
		if strings.HasPrefix(strings.Join(strings.Fields(strings.ToUpper(rest)), " "), "INTEGER PRIMARY KEY") {
			rowid = len(cols)
		}
		cols = append(cols, name)
	}
	return cols, rowid, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int64 {
	n, _ := v.(int64)
	return n
}
