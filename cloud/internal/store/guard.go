package store

import (
	"fmt"

	"gorm.io/gorm"
)

// Guard keys: one per invariant that a check-then-insert transaction keeps.
const (
	// GuardHomes serialises claims: the per-user quota and the lowest free
	// slot both read rows that other users' claims write, so one global key
	// keeps both (a per-user key would still let two users pick one slot,
	// and one of them get a needless "try again"). Claims are rare.
	GuardHomes = "homes"
	// GuardBaseDomains serialises base-domain registrations: an overlap
	// (example.com and a.example.com) can be between any two homes.
	GuardBaseDomains = "base-domains"
	// GuardAdmins serialises changes that could leave the cloud without an
	// active admin (a demotion, deactivation or deletion of an admin), so
	// two at once cannot both see "another admin remains".
	GuardAdmins = "admins"
)

// GuardMappings is the key for a home's mappings: its quota, its tunnel and
// public ports (both inside the home's own blocks), and its base domains'
// removal, which must not pass a mapping being created under them.
func GuardMappings(homeID uint64) string { return fmt.Sprintf("mappings:home:%d", homeID) }

// GuardCertificates is the key for a home's weekly certificate orders quota.
func GuardCertificates(homeID uint64) string { return fmt.Sprintf("certificates:home:%d", homeID) }

// GuardTokens is the key for a user's API tokens quota.
func GuardTokens(userID uint64) string { return fmt.Sprintf("tokens:user:%d", userID) }

// Guard makes the transactions that take key run their checks one at a time:
// the second one to take it waits until the first commits or rolls back, and
// its checks then see the first one's rows. Take it as the first statement of
// a transaction that counts or searches rows and then inserts on the result
// (a quota, an overlap, a lowest free slot); outside a transaction it does
// nothing. Unique indexes stay the last word for what they can express.
//
// SQLite does not need it (Open begins write transactions IMMEDIATE, so they
// run one at a time), but under PostgreSQL's default READ COMMITTED two
// claims both count one home and both insert (without the guard, 50 claims at
// once gave a user with a quota of 2 five homes). The upsert row-locks the
// guard until commit, and since each later statement under READ COMMITTED
// reads a fresh snapshot, the checks after it see every committed row (under
// REPEATABLE READ the waiter would fail instead: keep the default).
// SERIALIZABLE transactions would also do, but every caller would need a
// retry loop and a serialization failure could still surface as a 500; a
// lock on a named row needs neither and reads the same on both engines.
func Guard(tx *gorm.DB, key string) error {
	err := tx.Exec("INSERT INTO guards (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = guards.n + 1", key).Error
	if err != nil {
		return fmt.Errorf("guard %s: %w", key, err)
	}
	return nil
}
