// Package migrations is the cloud database's one versioned schema history,
// for SQLite and PostgreSQL alike, run by pressly/goose (version table
// goose_db_version). store.Open applies what is pending at every start (on
// PostgreSQL under an advisory lock, so nodes starting together take turns)
// and refuses a database a newer binary already migrated; `cloud migrate
// status|up` does the same by hand.
//
// How to add a column, table or index (models.go alone no longer changes the
// schema; TestEveryModelFieldHasAColumn in package store fails until the
// migration exists):
//
//  1. Change the model in store/models.go.
//  2. Add a file NNNNN_what.go here with the next version number and append
//     it to the list in All (migrations.go). Never edit a migration that was
//     committed: a database that ran it will not run it again.
//  3. Write its Up with the helpers in migrations.go: AddColumns /
//     AddIndexes take a frozen copy of the model holding only the new
//     fields (GORM names the column and index as the model will), tx.Exec runs
//     one statement valid on both engines, PerEngine one per engine where
//     the dialects differ. A frozen struct, not the live model: the
//     migration must keep meaning what it meant when the model moves on.
//  4. Make Up idempotent where it is cheap (HasColumn before AddColumn):
//     a database made by an unreleased build may hold the column already.
//
// Version 1 (00001_baseline.go) is the schema the cloud had when
// migrations began, kept as frozen copies of the models of that day and
// created by GORM's AutoMigrate. A database made by an older cloud (which
// ran AutoMigrate at each start and has no version table) is adopted: the
// baseline finds its tables, adds anything older releases lacked, and is
// recorded as applied; the later migrations then run as on any database.
package migrations
