package cloudtest

import (
	"os"
	"slices"
	"testing"

	"homeport.dev/cloud/internal/store/pgtest"
)

// EngineEnv names the database the test clouds use: HOMEPORT_TEST_DB=postgres
// puts every cloud a test starts (Start, the api and web harnesses) on a
// fresh database of one throwaway PostgreSQL server instead of SQLite;
// deploy/test.sh runs the API, web and serve suites once more that way.
const EngineEnv = "HOMEPORT_TEST_DB"

var postgres = pgtest.New() // started by the first DBArgs under HOMEPORT_TEST_DB=postgres

// DBArgs are the `cloud serve` flags that choose the test's database: none
// (SQLite in the data directory) unless HOMEPORT_TEST_DB=postgres, then
// --db with a new PostgreSQL database.
func DBArgs(t testing.TB) []string {
	t.Helper()
	if os.Getenv(EngineEnv) != "postgres" {
		return nil
	}
	return []string{"--db", postgres.DB(t)}
}

// StopPostgres ends the server DBArgs started, if it did (call it from
// TestMain after m.Run).
func StopPostgres() { postgres.Stop() }

// Main runs a package's tests, then stops what they started.
func Main(m *testing.M) {
	code := m.Run()
	StopPostgres()
	RemoveBinary()
	os.Exit(code)
}

func hasDB(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "--db" || len(a) > 5 && a[:5] == "--db=" })
}
