package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"os/user"
	"strings"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
)

// TestAuditCLI: changes made with `cloud users` are recorded as the CLI
// (the OS user, address "cli"); `cloud audit` prints them as a table, with
// filters, as JSON lines, and --follow prints a change made meanwhile by
// another process. On SQLite, and on PostgreSQL with --db.
func TestAuditCLI(t *testing.T) {
	bin := cloudtest.Binary(t)
	t.Run("sqlite", func(t *testing.T) { testAuditCLI(t, bin, nil) })
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.New()
		t.Cleanup(pg.Stop)
		testAuditCLI(t, bin, []string{"--db", pg.DB(t)})
	})
}

func testAuditCLI(t *testing.T, bin string, db []string) {
	data := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append(args, "--data", data), db...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cloud %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("a long passphrase\n", "users", "create", "root", "--email", "root@example.com", "--admin")
	run("another long passphrase\n", "users", "create", "alice", "--email", "alice@example.com")
	run("", "users", "approve", "alice")

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	table := run("", "audit")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "user.create") || !strings.Contains(lines[0], "root") ||
		!strings.Contains(lines[2], "user.approve") || !strings.Contains(lines[2], `{"active":false} -> {"active":true}`) {
		t.Fatalf("cloud audit printed, oldest first:\n%s", table)
	}
	for _, l := range lines {
		if !strings.Contains(l, "cli "+me.Username+" ") || !strings.Contains(l, " cli ") {
			t.Errorf("a CLI change is not recorded as the CLI (%s from cli): %s", me.Username, l)
		}
	}
	if out := run("", "audit", "--kind", "user.approve"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "alice") {
		t.Errorf("cloud audit --kind user.approve printed:\n%s", out)
	}

	var r proto.AuditRecord
	if err := json.Unmarshal([]byte(strings.Split(run("", "audit", "--json", "--kind", "user.approve"), "\n")[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "user.approve" || r.ActorKind != proto.ActorCLI || r.Actor != me.Username || r.Addr != "cli" || r.Target != "alice" {
		t.Errorf("cloud audit --json: %+v", r)
	}
	cmd := exec.Command(bin, append([]string{"audit", "--data", data, "--follow", "--json", "--kind", "user"}, db...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	got := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	next := func() proto.AuditRecord {
		t.Helper()
		select {
		case line, ok := <-got:
			var r proto.AuditRecord
			if !ok || json.Unmarshal([]byte(line), &r) != nil {
				t.Fatalf("cloud audit --follow printed %q", line)
			}
			return r
		case <-time.After(20 * time.Second):
			t.Fatal("cloud audit --follow printed nothing for 20 s")
		}
		return proto.AuditRecord{}
	}
	for range 3 { // the records so far
		next()
	}
	run("", "users", "deactivate", "alice")
	if r := next(); r.Kind != "user.deactivate" || r.Target != "alice" {
		t.Errorf("cloud audit --follow printed %+v, want alice's deactivation", r)
	}
}
