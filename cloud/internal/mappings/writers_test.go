package mappings_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/domains"
	"homeport.dev/cloud/internal/homes"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/store/pgtest"
	"homeport.dev/proto"
)

var pg = pgtest.New()

func TestMain(m *testing.M) { pg.Main(m) }

// TestConcurrentWritersKeepLimits: many requests at the same moment get
// exactly what the limits allow, and every other one the limit's own answer
// (not a "try again"), on SQLite and on PostgreSQL, whose READ COMMITTED lets
// two count-then-insert transactions both pass their checks.
func TestConcurrentWritersKeepLimits(t *testing.T) {
	for _, e := range pg.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, e.DSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ds := domains.New(db, domains.Reserved{}, 10000)
			hs, err := homes.New(db, homes.Options{Layout: homes.DefaultLayout, HomesPerUser: 2})
			if err != nil {
				t.Fatal(err)
			}
			ms, err := mappings.New(db, ds, mappings.Options{Layout: homes.DefaultLayout, PerHome: 4})
			if err != nil {
				t.Fatal(err)
			}
			alice, bob := newUser(t, db, "alice"), newUser(t, db, "bob")

			t.Run("homes per user", func(t *testing.T) {
				keys := make([]string, 50)
				for i := range keys {
					keys[i] = newKey(t)
				}
				errs := together(len(keys), func(i int) error {
					_, err := hs.Claim(ctx, alice, keys[i])
					return err
				})
				expect(t, errs, 2, problem.Quota)
				if got, _ := hs.List(ctx, alice); len(got) != 2 {
					t.Errorf("alice has %d homes, want 2 (the most per user)", len(got))
				}
			})

			t.Run("tokens per user", func(t *testing.T) {
				as, err := account.New(db)
				if err != nil {
					t.Fatal(err)
				}
				for round := range 5 { // the race is at the quota's edge: a few tries at it
					u := newUser(t, db, fmt.Sprintf("carol%d", round))
					for i := range 47 {
						if _, err := as.CreateToken(ctx, u, fmt.Sprintf("t%d", i)); err != nil {
							t.Fatal(err)
						}
					}
					errs := together(50, func(i int) error {
						_, err := as.CreateToken(ctx, u, fmt.Sprintf("c%d", i))
						return err
					})
					expect(t, errs, 3, problem.Quota) // 50 per user
				}
			})

			home := claim(t, hs, alice)
			t.Run("mappings per home", func(t *testing.T) {
				errs := together(50, func(i int) error {
					_, err := ms.Create(ctx, home, proto.MappingRequest{Name: fmt.Sprintf("m%d", i), Scheme: proto.SchemeTCP, Private: true})
					return err
				})
				expect(t, errs, 4, problem.Quota)
				if got, _ := ms.List(ctx, home.ID); len(got) != 4 {
					t.Errorf("home has %d mappings, want 4 (the most per home)", len(got))
				}
			})

			other := claim(t, hs, bob)
			t.Run("one name per home", func(t *testing.T) {
				errs := together(8, func(int) error {
					_, err := ms.Create(ctx, other, proto.MappingRequest{Name: "gpu-ui", Scheme: proto.SchemeTCP, Private: true})
					return err
				})
				expect(t, errs, 1, problem.Conflict)
			})
			t.Run("base domains overlap", func(t *testing.T) {
				for round := range 4 {
					parent, child := fmt.Sprintf("example%d.com", round), fmt.Sprintf("a.example%d.com", round)
					errs := together(50, func(i int) error {
						var err error
						if i%2 == 0 {
							_, err = ds.Register(ctx, home.ID, parent)
						} else {
							_, err = ds.Register(ctx, other.ID, child)
						}
						return err
					})
					expect(t, errs, 1, problem.Conflict)
					var n int64
					if err := db.Model(&store.BaseDomain{}).Where("domain IN ?", []string{parent, child}).Count(&n).Error; err != nil {
						t.Fatal(err)
					}
					if n != 1 {
						t.Fatalf("%s (home A) and %s (home B) are both registered: %d rows", parent, child, n)
					}
				}
			})

			// Removing a base domain is refused while a mapping uses it: also
			// when the mapping is being created at that moment.
			t.Run("base domain removed while mapped", func(t *testing.T) {
				for round := range 30 {
					d := fmt.Sprintf("removed%d.org", round)
					if _, err := ds.Register(ctx, other.ID, d); err != nil {
						t.Fatal(err)
					}
					together(4, func(i int) error {
						if i == 0 {
							return ds.Remove(ctx, other.ID, d)
						}
						_, err := ms.Create(ctx, other, proto.MappingRequest{Scheme: proto.SchemeHTTPS, Host: fmt.Sprintf("h%d.%s", i, d)})
						return err
					})
					list, err := ms.List(ctx, other.ID)
					if err != nil {
						t.Fatal(err)
					}
					// Only the names under d count: the home keeps mappings
					// the subtests before made (a tcp port, say).
					under := slices.DeleteFunc(list, func(m store.Mapping) bool { return !strings.HasSuffix(m.HostName(), "."+d) })
					registered, _ := ds.List(ctx, other.ID)
					if len(under) > 0 && !slices.ContainsFunc(registered, func(bd store.BaseDomain) bool { return bd.Domain == d }) {
						t.Fatalf("%s was removed while %s://%s uses it", d, under[0].Scheme, under[0].HostName())
					}
					for _, m := range under {
						if err := ms.Delete(ctx, other, m.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
		})
	}
}

// together runs n calls of fn at the same moment and returns their errors.
func together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// expect checks that ok calls succeeded and every other one was refused
// with kind.
func expect(t *testing.T, errs []error, ok int, kind problem.Kind) {
	t.Helper()
	succeeded := 0
	for _, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case problem.KindOf(err) != kind:
			t.Errorf("refused with %v (kind %d), want kind %d", err, problem.KindOf(err), kind)
		}
	}
	if succeeded != ok {
		t.Errorf("%d of %d concurrent requests succeeded, want exactly %d", succeeded, len(errs), ok)
	}
}

func newUser(t *testing.T, db *store.DB, name string) store.User {
	t.Helper()
	u := store.User{Username: name, Email: name + "@example.org", PasswordHash: "x", Role: "user", Active: true}
	if err := db.Create(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u
}

func claim(t *testing.T, hs *homes.Service, u store.User) store.Home {
	t.Helper()
	list, err := hs.List(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) > 0 {
		return list[0]
	}
	h, err := hs.Claim(context.Background(), u, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(k))
}
