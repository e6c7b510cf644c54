package legacydb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sqlite3(t *testing.T, db, script string) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("the sqlite3 command is needed (deploy/install-deps.sh installs it)")
	}
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
}

// TestReadTableMatchesSQLite writes a table with real SQLite that needs
// every part of the reader: interior pages (2,000 rows), overflow chains
// (values of 10,000 bytes), every integer width, floats, blobs, NULLs, a
// column added later (old rows lack it) and deleted rows, and reads it back.
func TestReadTableMatchesSQLite(t *testing.T) {
	for _, pageSize := range []int{512, 4096, 65536} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			var sql strings.Builder
			fmt.Fprintf(&sql, "PRAGMA page_size=%d;\nCREATE TABLE `other` (x);\nCREATE TABLE `things` (`id` integer PRIMARY KEY AUTOINCREMENT,`n` integer NOT NULL DEFAULT 0, \"s\" text, [b] blob, f real, CONSTRAINT c CHECK (n IS NOT NULL));\nBEGIN;\n", pageSize)
			want := map[int64]Row{}
			ints := []int64{0, 1, -1, 127, -128, 300, -40000, 8388607, 1 << 31, -(1 << 40), 1 << 47, 1<<62 + 5, -(1 << 63)}
			for i := int64(1); i <= 2000; i++ {
				n := ints[i%int64(len(ints))]
				s := strings.Repeat(string(rune('a'+i%26)), int(i*37%300))
				if i%97 == 0 {
					s = strings.Repeat("long value ", 1000)
				}
				r := Row{"id": i, "n": n, "s": s, "b": []byte{byte(i), 0, 0xff}, "f": float64(i)/8 + 1.0/16} // integral reals are stored as integers
				if i%10 == 0 {
					r["s"] = nil
				}
				fmt.Fprintf(&sql, "INSERT INTO things (id, n, s, b, f) VALUES (%d, %d, %s, X'%02x00ff', %v);\n", i, n, quote(r["s"]), byte(i), r["f"])
				want[i] = r
			}
			sql.WriteString("DELETE FROM things WHERE id % 7 = 0;\nCOMMIT;\nALTER TABLE things ADD COLUMN `late` text NOT NULL DEFAULT 'x';\nINSERT INTO things (id, n, late) VALUES (5000, 1, 'new');\n")
			for i := range want {
				if i%7 == 0 {
					delete(want, i)
				}
			}
			want[5000] = Row{"id": int64(5000), "n": int64(1), "s": nil, "b": nil, "f": nil, "late": "new"}
			sqlite3(t, db, sql.String())
			rows, err := ReadTable(db, "things")
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(want) {
				t.Fatalf("read %d rows, SQLite holds %d", len(rows), len(want))
			}
			for _, r := range rows {
				w := want[r["id"].(int64)]
				if !reflect.DeepEqual(r, w) {
					t.Fatalf("row %v:\n got  %v\n want %v", r["id"], short(r), short(w))
				}
			}
		})
	}
}

// TestReadTableFromWAL reads rows that live only in the write-ahead log (a
// database whose writer never checkpointed), and ignores frames after the
// last commit.
func TestReadTableFromWAL(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	// The sqlite3 shell checkpoints when it exits; copy the log out while a
	// second shell still holds the database open in a transaction-free read.
	sqlite3(t, db, "PRAGMA journal_mode=WAL; CREATE TABLE e (id integer primary key, v text);")
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(`PRAGMA wal_autocheckpoint=0;
INSERT INTO e (v) VALUES ('one'), ('two');
UPDATE e SET v = 'TWO' WHERE id = 2;
.shell cp ` + db + ` ` + db + `.copy
.shell cp ` + db + `-wal ` + db + `.copy-wal
`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	if st, err := os.Stat(db + ".copy-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("no write-ahead log was copied: %v", err)
	}
	rows, err := ReadTable(db+".copy", "e")
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{{"id": int64(1), "v": "one"}, {"id": int64(2), "v": "TWO"}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("got %v, want %v", rows, want)
	}
	// A torn last frame (a crash while writing) is not a commit.
	b, _ := os.ReadFile(db + ".copy-wal")
	os.WriteFile(db+".copy-wal", append(b, make([]byte, 100)...), 0o600)
	if rows, err = ReadTable(db+".copy", "e"); err != nil || !reflect.DeepEqual(rows, want) {
		t.Fatalf("with a torn frame: %v, %v", rows, err)
	}
}

func TestReadTableRefusesOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(p, []byte(strings.Repeat("not sqlite ", 100)), 0o600)
	if _, err := ReadTable(p, "entries"); err == nil || !strings.Contains(err.Error(), "not an SQLite 3 database") {
		t.Fatalf("got %v", err)
	}
	db := filepath.Join(t.TempDir(), "t.db")
	sqlite3(t, db, "CREATE TABLE a (x);")
	if _, err := ReadTable(db, "entries"); err == nil || !strings.Contains(err.Error(), "has no table entries") {
		t.Fatalf("got %v", err)
	}
}

func quote(v any) string {
	if v == nil {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(v.(string), "'", "''") + "'"
}

func short(r Row) string {
	s := fmt.Sprint(r)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
