package traffic

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRingWrapsAndStaysBounded(t *testing.T) {
	r := newRing[int](4)
	if got := r.values(); len(got) != 0 {
		t.Fatalf("empty ring = %v", got)
	}
	for i := 1; i <= 3; i++ {
		r.push(i)
	}
	if got := r.values(); !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Fatalf("before wrapping = %v, want [1 2 3]", got)
	}
	for i := 4; i <= 10; i++ {
		r.push(i)
	}
	if got := r.values(); !reflect.DeepEqual(got, []int{7, 8, 9, 10}) {
		t.Fatalf("after wrapping = %v, want the newest four, oldest first", got)
	}
	if r.last() != 10 || len(r.vals) != 4 {
		t.Fatalf("last = %d, slots = %d", r.last(), len(r.vals))
	}
}

// sample feeds one step: the cumulative counters of each home.
func sample(r *Recorder, at time.Time, online int, counts map[uint64]Count) {
	r.Sample(at, counts, online)
}

func TestRecorderDeltasRatesAndRollUp(t *testing.T) {
	r := New(Options{Step: 10 * time.Second, Fine: 3, Every: 2, Coarse: 2})
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	steps := []map[uint64]Count{
		{1: {Home: "a", In: 1000, Out: 100}},
		{1: {Home: "a", In: 3000, Out: 100}, 2: {Home: "b", In: 50, Out: 500}},
		{1: {Home: "a", In: 3000, Out: 600}, 2: {Home: "b", In: 50, Out: 500}},
		{1: {Home: "a", In: 8000, Out: 600}, 2: {Home: "b", In: 150, Out: 500}},
	}
	for i, c := range steps {
		sample(r, t0.Add(time.Duration(i+1)*10*time.Second), len(c), c)
	}
	a, ok := r.Home(1, Hour)
	if !ok {
		t.Fatal("home 1 has no series")
	}
	// Four steps into a ring of three: the first fell out.
	if want := []Point{{2000, 0}, {0, 500}, {5000, 0}}; !reflect.DeepEqual(a.Values, want) {
		t.Fatalf("home 1 hour = %v, want %v", a.Values, want)
	}
	if a.Step != 10*time.Second || !a.End.Equal(t0.Add(40*time.Second)) || !a.Start().Equal(t0.Add(10*time.Second)) {
		t.Fatalf("home 1 hour spans %v..%v step %v", a.Start(), a.End, a.Step)
	}
	if got := r.Rate(1); got != (Rate{In: 500, Out: 0}) {
		t.Fatalf("home 1 rate = %+v, want 500 B/s in (5000 B in the last 10 s)", got)
	}
	if got := r.TotalRate(); got != (Rate{In: 510, Out: 0}) {
		t.Fatalf("total rate = %+v, want 510 B/s in", got)
	}
	day := r.Total(Day)
	if want := []Point{{3050, 600}, {5100, 500}}; !reflect.DeepEqual(day.Values, want) {
		t.Fatalf("total day = %v, want two 20 s steps %v", day.Values, want)
	}
	if day.Step != 20*time.Second {
		t.Fatalf("day step = %v", day.Step)
	}
	if got := r.Online(Hour).Values; !reflect.DeepEqual(got, []int{2, 2, 2}) {
		t.Fatalf("online hour = %v", got)
	}
	if got := r.Online(Day).Values; !reflect.DeepEqual(got, []int{2, 2}) {
		t.Fatalf("online day = %v (the most of each coarse step)", got)
	}
}

func TestRecorderDropsReleasedHomes(t *testing.T) {
	r := New(Options{})
	now := time.Now()
	sample(r, now, 2, map[uint64]Count{1: {Home: "a", In: 1}, 2: {Home: "b", In: 2}})
	sample(r, now.Add(r.Step()), 1, map[uint64]Count{2: {Home: "b", In: 4}})
	if _, ok := r.Home(1, Hour); ok || r.Homes() != 1 {
		t.Fatalf("released home 1 kept its series (homes = %d)", r.Homes())
	}
	if b, ok := r.Home(2, Day); !ok || len(b.Values) != 0 {
		t.Fatalf("home 2 day = %v, %v: no coarse step closed yet", b.Values, ok)
	}
}

func TestRecorderRestartedCounterCountsFromZero(t *testing.T) {
	r := New(Options{})
	now := time.Now()
	sample(r, now, 1, map[uint64]Count{1: {Home: "a", In: 5000}})
	sample(r, now.Add(r.Step()), 1, map[uint64]Count{1: {Home: "a", In: 70}})
	if h, _ := r.Home(1, Hour); h.Values[1] != (Point{In: 70}) {
		t.Fatalf("after a counter restart = %v, want 70 in", h.Values[1])
	}
}

// TestRecorderMemoryPerHome measures the heap a home's series holds once
// its rings are full, and holds it to its budget.
func TestRecorderMemoryPerHome(t *testing.T) {
	const homes = 500
	r := New(Options{Every: 1}) // the default rings; every sample closes a coarse step, so both fill
	counts := map[uint64]Count{}
	for id := uint64(1); id <= homes; id++ {
		counts[id] = Count{Home: "home-slug-" + strings.Repeat("x", 8)}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	at := time.Now()
	for i := 0; i < 400; i++ { // both rings fill and wrap
		r.Sample(at, counts, homes)
		at = at.Add(r.Step())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / homes
	t.Logf("memory per home: %.0f bytes (rings: %d)", per, (360+288)*16)
	if per > 12<<10 {
		t.Fatalf("memory per home = %.0f bytes, budget 12 KiB", per)
	}
	runtime.KeepAlive(r)
}

func TestMetricsExportTotalsAndHomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := New(Options{Registry: reg})
	now := time.Now()
	sample(r, now, 1, map[uint64]Count{1: {Home: "alpha", In: 100, Out: 10}})
	sample(r, now.Add(r.Step()), 1, map[uint64]Count{1: {Home: "alpha", In: 1100, Out: 10}})
	want := `
# HELP homeport_traffic_bytes_total Bytes through all home tunnels as the traffic recorder sampled them, by direction (in = towards the home).
# TYPE homeport_traffic_bytes_total counter
homeport_traffic_bytes_total{direction="in"} 1100
homeport_traffic_bytes_total{direction="out"} 10
# HELP homeport_traffic_home_bytes_per_second Bytes per second through one home's tunnel over the last sampling step, by direction.
# TYPE homeport_traffic_home_bytes_per_second gauge
homeport_traffic_home_bytes_per_second{direction="in",home="alpha"} 100
homeport_traffic_home_bytes_per_second{direction="out",home="alpha"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "homeport_traffic_bytes_total", "homeport_traffic_home_bytes_per_second"); err != nil {
		t.Fatal(err)
	}
	// Released: the home's label goes, the total counter stays.
	sample(r, now.Add(2*r.Step()), 0, map[uint64]Count{})
	if n := testutil.CollectAndCount(collector{r}, "homeport_traffic_home_bytes_per_second"); n != 0 {
		t.Fatalf("a released home still has %d per-home series", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want[:strings.Index(want, "# HELP homeport_traffic_home")]), "homeport_traffic_bytes_total"); err != nil {
		t.Fatal(err)
	}
}
