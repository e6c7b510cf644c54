package serve_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// BenchmarkRouteChangeVsMappings measures what one route change costs as the
// number of mappings grows: the cloud (with its managed HAProxy) holds N
// mappings, then a home creates and deletes an http mapping through the
// mappings service, each call returning once HAProxy routes (or no longer
// routes) the host. It reports the p50 of a create+delete pair at N = 100,
// 1,000, 10,000 and 40,000 and the ratio of the last to the first.
//
//	go test ./internal/serve -run '^$' -bench RouteChangeVsMappings -benchtime 1x
func BenchmarkRouteChangeVsMappings(b *testing.B) {
	sizes := []int{100, 1_000, 10_000, 40_000}
	const pairs = 100
	c := cloudtest.Start(b, cloudtest.Options{HAProxy: true, Args: []string{"--reconcile-interval", "1h"}})
	h := c.NewHome(b, "bench")
	tok := c.Token(b, h.User)
	if st := api(b, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "bench.test"}, nil); st != 201 {
		b.Fatalf("base domain: %d", st)
	}
	ctx := context.Background()
	var seedHome store.Home
	for n := 0; n < b.N; n++ {
		var p50s []time.Duration
		seeded := 0
		for _, size := range sizes {
			seedHome, seeded = seedMappings(b, c, seedHome, seeded, size)
			if _, err := c.App.Routes.Full(ctx); err != nil { // HAProxy holds all N, untimed
				b.Fatal(err)
			}
			var took []time.Duration
			for i := 0; i < pairs; i++ {
				start := time.Now()
				m, err := c.App.Mappings.Create(ctx, h.Home, proto.MappingRequest{Scheme: proto.SchemeHTTP, Host: fmt.Sprintf("r%d.bench.test", i)})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.App.Mappings.Delete(ctx, h.Home, m.ID); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			p50s = append(p50s, pct(took, 50))
			b.Logf("%6d mappings: create+delete p50 %v p99 %v", size, pct(took, 50), pct(took, 99))
		}
		ratio := float64(p50s[len(p50s)-1]) / float64(p50s[0])
		b.ReportMetric(ratio, "p50-ratio-40k/100")
		b.Logf("per-change p50 ratio %d/%d mappings: %.2fx", sizes[len(sizes)-1], sizes[0], ratio)
	}
}

// seedMappings inserts public http mappings straight into the database, on
// one home of an active user, until there are size of them. Their tunnel
// ports lie outside the cloud's own range; nothing connects to them.
func seedMappings(b *testing.B, c *cloudtest.Cloud, h store.Home, have, size int) (store.Home, int) {
	b.Helper()
	db := c.App.DB
	if h.ID == 0 {
		u := store.User{Username: "seed", Email: "seed@example.com", PasswordHash: "x", Role: proto.RoleUser, Active: true}
		if err := db.Create(&u).Error; err != nil {
			b.Fatal(err)
		}
		h = store.Home{Slot: 100_000, Slug: "seed", UserID: u.ID, PublicKey: "k", KeyFingerprint: "seed"}
		if err := db.Create(&h).Error; err != nil {
			b.Fatal(err)
		}
	}
	own := c.App.Config.Layout.TunnelRange()
	port := 1024
	for i := 0; i < have; i++ { // skip the ports already seeded
		port = nextSeedPort(port+1, own)
	}
	var ms []store.Mapping
	for i := have; i < size; i++ {
		port = nextSeedPort(port+1, own)
		host := fmt.Sprintf("s%d.seed.test", i)
		ms = append(ms, store.Mapping{HomeID: h.ID, Scheme: proto.SchemeHTTP, Host: &host, TunnelPort: port, ProxyProtocol: true})
	}
	if err := db.CreateInBatches(ms, 1000).Error; err != nil {
		b.Fatal(err)
	}
	return h, size
}

func nextSeedPort(p int, own proto.PortRange) int {
	if own.Contains(p) {
		return own.Last + 1
	}
	return p
}
