// Package traffic keeps the last hour of each forward's traffic in memory,
// for the console: the gateway counts bytes per forward (gateway.Counter);
// every step (10 s) a Recorder reads the counters and keeps what moved
// during the step in a fixed ring per forward (360 steps: about 9 KB per
// forward). Nothing is written to disk: the history starts with the agent.
package traffic

import (
	"context"
	"sync"
	"time"

	"homeport.dev/home/internal/gateway"
)

// Defaults of New.
const (
	DefaultStep  = 10 * time.Second
	DefaultSteps = 360 // an hour of DefaultStep
)

// Recorder keeps the counters and the recent history of every forward, by
// the forward's key (store.Entry.Public: stable across edits of the rest
// of the entry and across reloads).
type Recorder struct {
	step  time.Duration
	steps int

	mu       sync.Mutex
	forwards map[string]*forward
}

type forward struct {
	count      gateway.Counter
	seenIn     uint64 // the counter at the last sample
	seenOut    uint64
	seenAt     time.Time
	rateIn     float64 // bytes/s between the last two samples
	rateOut    float64
	slots      []slot // by step number modulo steps
	lastSample int64  // the step of the last sample
}

// slot is the traffic of one step; it holds its step's number so that a
// slot left over from an earlier lap of the ring reads as zero.
type slot struct {
	step    int64
	in, out uint64
}

// New returns a Recorder sampling every step and keeping steps samples;
// zero values take the defaults.
func New(step time.Duration, steps int) *Recorder {
	if step <= 0 {
		step = DefaultStep
	}
	if steps <= 0 {
		steps = DefaultSteps
	}
	return &Recorder{step: step, steps: steps, forwards: map[string]*forward{}}
}

// Counter is the counter of the forward key, made on first use: the
// gateway's handlers of successive versions of the forward share it.
func (r *Recorder) Counter(key string) *gateway.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &r.get(key).count
}

func (r *Recorder) get(key string) *forward {
	f := r.forwards[key]
	if f == nil {
		f = &forward{slots: make([]slot, r.steps), lastSample: -1}
		r.forwards[key] = f
	}
	return f
}

// Keep forgets every forward but keys (the forwards removed from the
// profile), so memory follows the profile.
func (r *Recorder) Keep(keys []string) {
	keep := make(map[string]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.forwards {
		if !keep[k] {
			delete(r.forwards, k)
		}
	}
}

// Run samples every step until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.Sample(now)
		}
	}
}

// Sample adds what every counter moved since the last sample to the step
// now falls in, and takes the rates over that span.
func (r *Recorder) Sample(now time.Time) {
	cur := r.stepOf(now)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.forwards {
		in, out := f.count.Bytes()
		dIn, dOut := in-f.seenIn, out-f.seenOut
		if !f.seenAt.IsZero() {
			if secs := now.Sub(f.seenAt).Seconds(); secs > 0 {
				f.rateIn, f.rateOut = float64(dIn)/secs, float64(dOut)/secs
			}
		}
		f.seenIn, f.seenOut, f.seenAt = in, out, now
		s := &f.slots[int(cur%int64(r.steps))]
		if s.step != cur {
			*s = slot{step: cur}
		}
		s.in += dIn
		s.out += dOut
		f.lastSample = cur
	}
}

func (r *Recorder) stepOf(t time.Time) int64 { return t.UnixNano() / int64(r.step) }

// Stats is one forward's traffic as the console shows it.
type Stats struct {
	// In and Out are the bytes moved since the agent started (in: from
	// visitors through the tunnel), read from the counter now.
	In, Out uint64
	// RateIn and RateOut are bytes per second over the last sample's span.
	RateIn, RateOut float64
	// Step is the time between the values of the series; the last ends
	// at End.
	Step time.Duration
	End  time.Time
	// HourIn and HourOut are the bytes per second of every step of the
	// last hour (steps before the first sample are 0), oldest first.
	HourIn, HourOut []float64
}

// Start is when the series' first step began.
func (s Stats) Start() time.Time { return s.End.Add(-time.Duration(len(s.HourIn)) * s.Step) }

// Stats returns the traffic of forward key as of now; a forward never
// counted has none (zeros over the hour).
func (r *Recorder) Stats(key string, now time.Time) Stats {
	cur := r.stepOf(now)
	st := Stats{Step: r.step, End: time.Unix(0, (cur+1)*int64(r.step)), HourIn: make([]float64, r.steps), HourOut: make([]float64, r.steps)}
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.forwards[key]
	if f == nil {
		return st
	}
	st.In, st.Out = f.count.Bytes()
	if f.lastSample >= cur-1 { // a rate older than a step is no longer current
		st.RateIn, st.RateOut = f.rateIn, f.rateOut
	}
	secs := r.step.Seconds()
	for i := range r.steps {
		step := cur - int64(r.steps-1-i)
		if step < 0 {
			continue
		}
		if s := f.slots[int(step%int64(r.steps))]; s.step == step {
			st.HourIn[i], st.HourOut[i] = float64(s.in)/secs, float64(s.out)/secs
		}
	}
	return st
}
