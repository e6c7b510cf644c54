package api_test

import (
	"fmt"
	"sync"
	"testing"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/proto"
)

// parallel runs n requests at once and counts answers by status.
func parallel(e *env, n int, req func(i int) (method, path, token string, body any)) map[int]int {
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := 0; i < n; i++ {
		method, path, token, body := req(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, _ := e.do(method, path, token, body)
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestParallelClaimsNeverShareASlot(t *testing.T) {
	e := newEnv(t)
	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = e.user(fmt.Sprintf("u%02d", i), true, false)
	}
	got := parallel(e, 50, func(i int) (string, string, string, any) {
		return "POST", "/api/v1/homes", tokens[i], proto.ClaimHomeRequest{PublicKey: newKey(t)}
	})
	if got[201] != 10 || got[409] != 40 || len(got) != 2 {
		t.Fatalf("answers = %v, want 10 x 201 and 40 x 409", got)
	}
	var slots []int
	if err := e.app.DB.Table("homes").Pluck("slot", &slots).Error; err != nil {
		t.Fatal(err)
	}
	if s := sorted(slots); len(s) != 10 || s[0] != 0 || s[9] != 9 {
		t.Errorf("slots = %v, want 0..9 once each", s)
	}
}

func TestParallelMappingsNeverShareAPortOrHost(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	path := "/api/v1/homes/" + h.Slug + "/mappings"
	// 50 distinct hosts into a 16-port block: 16 win, 34 hit the quota.
	got := parallel(e, 50, func(i int) (string, string, string, any) {
		return "POST", path, alice, proto.MappingRequest{Scheme: "https", Host: fmt.Sprintf("h%d.example.com", i)}
	})
	if got[201] != 16 || got[409] != 34 || len(got) != 2 {
		t.Fatalf("answers = %v, want 16 x 201 and 34 x 409", got)
	}
	var ports []int
	if err := e.app.DB.Table("mappings").Pluck("tunnel_port", &ports).Error; err != nil {
		t.Fatal(err)
	}
	if p := sorted(ports); len(p) != 16 || p[0] != 20000 || p[15] != 20015 {
		t.Errorf("tunnel ports = %v, want 20000..20015 once each", p)
	}
}

func TestParallelSameHostAndPortHaveOneWinner(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.HomesPerUser = 1 })
	alice := e.user("alice", true, false)
	h := e.claim(alice)
	e.addDomain(alice, h.Slug, "example.com")
	path := "/api/v1/homes/" + h.Slug + "/mappings"
	got := parallel(e, 50, func(i int) (string, string, string, any) {
		if i%2 == 0 {
			return "POST", path, alice, proto.MappingRequest{Scheme: "https", Host: "same.example.com"}
		}
		return "POST", path, alice, proto.MappingRequest{Scheme: "tcp", PublicPort: 10003}
	})
	if got[201] != 2 || got[409] != 48 {
		t.Fatalf("answers = %v, want 2 x 201 (one host, one port) and 48 x 409", got)
	}
}

func TestParallelBaseDomainsOverlapHasOneWinner(t *testing.T) {
	e := newEnv(t)
	var slugs, tokens []string
	for i := 0; i < 10; i++ {
		tok := e.user(fmt.Sprintf("u%d", i), true, false)
		tokens = append(tokens, tok)
		slugs = append(slugs, e.claim(tok).Slug)
	}
	names := []string{"example.com", "a.example.com", "b.a.example.com", "c.example.com", "example.com"}
	got := parallel(e, 50, func(i int) (string, string, string, any) {
		return "POST", "/api/v1/homes/" + slugs[i%10] + "/base-domains", tokens[i%10], proto.BaseDomainRequest{Domain: names[i%len(names)]}
	})
	var domains []string
	if err := e.app.DB.Table("base_domains").Pluck("domain", &domains).Error; err != nil {
		t.Fatal(err)
	}
	// Either example.com won alone, or some of its non-overlapping children did.
	if got[201] != len(domains) || got[201]+got[409] != 50 {
		t.Fatalf("answers = %v with %d rows (%v)", got, len(domains), domains)
	}
	for i, a := range domains {
		for _, b := range domains[i+1:] {
			if a == b || covers(a, b) || covers(b, a) {
				t.Errorf("overlapping domains registered at once: %s and %s", a, b)
			}
		}
	}
}

func covers(base, host string) bool {
	return host == base || len(host) > len(base) && host[len(host)-len(base)-1:] == "."+base
}
