// Package audit owns the cloud's audit log: who changed what, when and from
// where. A service records a change with Record on the transaction that
// makes it, so a change that fails or rolls back leaves no record and a
// record never describes a change that did not happen. Who is acting travels
// in the context (With): the API's and web UI's authentication put the
// caller there, the `cloud` CLI itself; services take no new parameters.
// Records are only inserted; the retention prune (Prune) is the one delete.
package audit

import (
	"context"
	"encoding/json"
	"os/user"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// Actor is who makes a change: a kind (proto.ActorUser, ActorHome,
// ActorAdmin, ActorCLI, ActorSystem), a name (username, home slug, the OS
// user of a CLI) and the client address as the server trusts it ("cli" for
// a command).
type Actor struct {
	Kind string
	Name string
	Addr string
}

type actorKey struct{}

// With returns ctx carrying a as the actor of the changes made under it.
func With(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// From returns the actor ctx carries; without one it is the system.
func From(ctx context.Context) Actor {
	if ctx != nil {
		if a, ok := ctx.Value(actorKey{}).(Actor); ok {
			return a
		}
	}
	return System
}

// System is the cloud acting on its own (retention).
var System = Actor{Kind: proto.ActorSystem, Name: "cloud", Addr: "-"}

// CLI is the actor of a `cloud` command: the OS user running it.
func CLI() Actor {
	name := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return Actor{Kind: proto.ActorCLI, Name: name, Addr: "cli"}
}

// Entry is what a service says about a change. Actor and time come from the
// context and the clock.
type Entry struct {
	Kind   string // what happened: "mapping.create", "user.approve"...
	Home   string // the home's slug, when the change is about one
	Target string // what was changed, for people: "https://app.example.com", "bob"
	// OwnerID is the account the change is about (0: none); its user
	// reads the record in their own log.
	OwnerID uint64
	// HomeID, when Home is empty, names the home by ID: Record reads its
	// slug and owner in the same transaction.
	HomeID uint64
	// Before and After are marshalled to JSON; nil leaves them out. Never
	// put a secret (token, password, hash) in them.
	Before, After any
	// Who names the actor when the context's actor has no name yet: a
	// signup, a login or a reset link acts for the account it is about.
	Who string
}

// Record writes e on tx, the transaction of the change it describes; the
// actor is tx's context's. An error fails (rolls back) the change.
func Record(tx *gorm.DB, e Entry) error {
	a := From(tx.Statement.Context)
	if e.Home == "" && e.HomeID != 0 {
		var h store.Home
		if err := tx.Select("slug", "user_id").Take(&h, e.HomeID).Error; err != nil {
			return err
		}
		e.Home = h.Slug
		if e.OwnerID == 0 {
			e.OwnerID = h.UserID
		}
	}
	if a.Name == "" {
		a.Name = e.Who
	}
	r := store.AuditRecord{
		At: time.Now().UTC().Truncate(time.Microsecond), ActorKind: a.Kind, Actor: clip(a.Name, 64), Addr: clip(a.Addr, 64),
		Kind: e.Kind, Home: e.Home, Target: clip(e.Target, 300), OwnerID: e.OwnerID,
	}
	var err error
	if r.Before, err = marshal(e.Before); err != nil {
		return err
	}
	if r.After, err = marshal(e.After); err != nil {
		return err
	}
	return tx.Create(&r).Error
}

// Write records e in a transaction of its own: for events that change no
// row (an SSH login, a refusal).
func Write(ctx context.Context, db *store.DB, e Entry) error {
	return db.Tx(ctx, func(tx *gorm.DB) error { return Record(tx, e) })
}

func marshal(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// clip cuts s to at most n bytes on a rune boundary: names and addresses
// can come from a client.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}
