package serve_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// TestRacingDeleteAndCreateOfOneHostLeaveTheRouteRight: a mapping of a host
// is deleted and a new one for the same host created at once; their
// notifications reach the reconciler in the wrong order (create, then the
// delete). HAProxy must end up routing the host as the database says; it
// used to apply the late delete and drop the new route until the next full
// reconcile.
func TestRacingDeleteAndCreateOfOneHostLeaveTheRouteRight(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--reconcile-interval", "1h"}})
	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	base := "/api/v1/homes/" + h.Slug
	if st := api(t, c, tok, "POST", base+"/base-domains", proto.BaseDomainRequest{Domain: "race.example"}, nil); st != 201 {
		t.Fatalf("base domain: %d", st)
	}
	var old proto.Mapping
	if st := api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "http", Host: "app.race.example"}, &old); st != 201 {
		t.Fatalf("mapping: %d", st)
	}
	// The delete commits but its notification is late.
	ctx := context.Background()
	var oldRow store.Mapping
	if err := c.App.DB.WithContext(ctx).First(&oldRow, old.ID).Error; err != nil {
		t.Fatal(err)
	}
	if err := c.App.DB.WithContext(ctx).Delete(&store.Mapping{}, old.ID).Error; err != nil {
		t.Fatal(err)
	}
	// The create commits and notifies (through the API, as a user would).
	var fresh proto.Mapping
	if st := api(t, c, tok, "POST", base+"/mappings", proto.MappingRequest{Scheme: "http", Host: "app.race.example"}, &fresh); st != 201 {
		t.Fatalf("new mapping: %d", st)
	}
	// Now the late delete arrives.
	c.App.Routes.Changed(ctx, nil, []store.Mapping{oldRow})

	want := fmt.Sprintf("{app.race.example %d}", fresh.TunnelPort)
	if maps := showMaps(t, c); !strings.Contains(maps, want) {
		t.Fatalf("HAProxy lost the new route of app.race.example (want %s):\n%s", want, maps)
	}
}
