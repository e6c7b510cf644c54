package web_test

import (
	"testing"

	"homeport.dev/cloud/internal/cloudtest"
)

// TestMain stops the PostgreSQL server HOMEPORT_TEST_DB=postgres starts.
func TestMain(m *testing.M) { cloudtest.Main(m) }
