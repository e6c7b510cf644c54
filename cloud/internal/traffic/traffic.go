// Package traffic keeps the recent history of the tunnels' traffic in
// memory, for the dashboards' charts and /metrics: per home and in total,
// the bytes moved in and out during each 10 s step of the last hour and
// each 5 min step of the last day, and the number of connected homes over
// the same spans. Memory is bounded: each home has two fixed rings (about
// 10 KB), and a home's rings go when the SSH endpoint forgets the home
// (released).
package traffic

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options shape a Recorder; zero values take the defaults.
type Options struct {
	Step     time.Duration // between samples; default 10 s
	Fine     int           // samples kept at Step; default 360 (an hour)
	Every    int           // samples per coarse step; default 30 (5 min)
	Coarse   int           // coarse steps kept; default 288 (a day)
	Registry prometheus.Registerer
}

// Count is one home's cumulative byte counters, as the SSH endpoint keeps
// them (in = towards the home).
type Count struct {
	Home    string // the home's slug: the metrics label
	In, Out uint64
}

// Span selects the resolution of a series.
type Span int

const (
	Hour Span = iota // the fine ring: Step apart, Fine long
	Day              // the coarse ring: Step*Every apart, Coarse long
)

// Rate is bytes per second, by direction.
type Rate struct {
	In, Out float64
}

// Recorder turns cumulative counters, sampled every step, into series.
type Recorder struct {
	o Options

	mu        sync.Mutex
	homes     map[uint64]*homeSeries
	total     homeSeries
	online    onlineSeries
	samples   int       // taken since start, for the coarse roll-up
	end       time.Time // of the last sample
	coarseEnd time.Time // of the last coarse step
	sum       Point     // every byte ever sampled, for /metrics
}

type homeSeries struct {
	name         string
	fine, coarse *ring[Point]
	acc          Point // of the coarse step in progress
	seen         Count // the counters at the last sample
}

type onlineSeries struct {
	fine, coarse *ring[int]
	max          int // of the coarse step in progress
}

// New returns a Recorder with empty series.
func New(o Options) *Recorder {
	if o.Step <= 0 {
		o.Step = 10 * time.Second
	}
	if o.Fine <= 0 {
		o.Fine = 360
	}
	if o.Every <= 0 {
		o.Every = 30
	}
	if o.Coarse <= 0 {
		o.Coarse = 288
	}
	r := &Recorder{o: o, homes: map[uint64]*homeSeries{}}
	r.total = r.newSeries("")
	r.online = onlineSeries{fine: newRing[int](o.Fine), coarse: newRing[int](o.Coarse)}
	if o.Registry != nil {
		o.Registry.MustRegister(collector{r})
	}
	return r
}

func (r *Recorder) newSeries(name string) homeSeries {
	return homeSeries{name: name, fine: newRing[Point](r.o.Fine), coarse: newRing[Point](r.o.Coarse)}
}

// Step is the time between samples.
func (r *Recorder) Step() time.Duration { return r.o.Step }

// Run samples source every Step until ctx ends. source returns every home
// the SSH endpoint knows, with its counters, and how many are connected.
func (r *Recorder) Run(ctx context.Context, source func() (map[uint64]Count, int)) {
	t := time.NewTicker(r.o.Step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			counts, online := source()
			r.Sample(now, counts, online)
		}
	}
}

// Sample closes a step at now: each home's traffic since the last sample
// is its counters minus what they were then. Homes missing from counts are
// gone (released) and lose their series.
func (r *Recorder) Sample(now time.Time, counts map[uint64]Count, online int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.homes {
		if _, ok := counts[id]; !ok {
			delete(r.homes, id)
		}
	}
	var total Point
	for id, c := range counts {
		s := r.homes[id]
		if s == nil {
			ns := r.newSeries(c.Home)
			s = &ns
			r.homes[id] = s
		}
		p := Point{In: delta(c.In, s.seen.In), Out: delta(c.Out, s.seen.Out)}
		s.seen, s.name = c, c.Home
		s.add(p)
		total.In += p.In
		total.Out += p.Out
	}
	r.total.add(total)
	r.sum.In += total.In
	r.sum.Out += total.Out
	r.online.fine.push(online)
	r.online.max = max(r.online.max, online)
	r.end = now
	r.samples++
	if r.samples%r.o.Every == 0 {
		for _, s := range r.homes {
			s.roll()
		}
		r.total.roll()
		r.online.coarse.push(r.online.max)
		r.online.max = 0
		r.coarseEnd = now
	}
}

// delta is what a counter grew by; a counter that went back was restarted
// (the endpoint forgot the home and met it again) and counts from zero.
func delta(now, then uint64) uint64 {
	if now < then {
		return now
	}
	return now - then
}

func (s *homeSeries) add(p Point) {
	s.fine.push(p)
	s.acc.In += p.In
	s.acc.Out += p.Out
}

func (s *homeSeries) roll() {
	s.coarse.push(s.acc)
	s.acc = Point{}
}

func (r *Recorder) span(s *homeSeries, span Span) Series[Point] {
	if span == Day {
		return Series[Point]{Step: r.o.Step * time.Duration(r.o.Every), End: r.coarseEnd, Values: s.coarse.values()}
	}
	return Series[Point]{Step: r.o.Step, End: r.end, Values: s.fine.values()}
}

// Home is one home's traffic over span; false when the recorder has not
// sampled the home (never connected since the cloud started, or released).
func (r *Recorder) Home(id uint64, span Span) (Series[Point], bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.homes[id]
	if s == nil {
		return Series[Point]{}, false
	}
	return r.span(s, span), true
}

// Total is the traffic of all homes together over span.
func (r *Recorder) Total(span Span) Series[Point] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.span(&r.total, span)
}

// Online is the number of connected homes at each sample (Hour) or the
// most during each coarse step (Day).
func (r *Recorder) Online(span Span) Series[int] {
	r.mu.Lock()
	defer r.mu.Unlock()
	if span == Day {
		return Series[int]{Step: r.o.Step * time.Duration(r.o.Every), End: r.coarseEnd, Values: r.online.coarse.values()}
	}
	return Series[int]{Step: r.o.Step, End: r.end, Values: r.online.fine.values()}
}

// Rate is a home's rate over the last step (zero when unknown).
func (r *Recorder) Rate(id uint64) Rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.homes[id]; s != nil {
		return r.rate(s.fine.last())
	}
	return Rate{}
}

// TotalRate is all homes' rate over the last step.
func (r *Recorder) TotalRate() Rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rate(r.total.fine.last())
}

func (r *Recorder) rate(p Point) Rate {
	sec := r.o.Step.Seconds()
	return Rate{In: float64(p.In) / sec, Out: float64(p.Out) / sec}
}

// Homes is how many homes have series (the memory the recorder holds is
// about this many times two rings).
func (r *Recorder) Homes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.homes)
}
