package traffic

import "time"

// ring is a fixed-size series of values one step apart, the newest
// overwriting the oldest once it is full. It stores no timestamps: the
// time of each value follows from the time of the newest and the step.
type ring[T any] struct {
	vals []T
	next int  // where the next value goes
	full bool // every slot written at least once
}

func newRing[T any](n int) *ring[T] { return &ring[T]{vals: make([]T, n)} }

func (r *ring[T]) push(v T) {
	r.vals[r.next] = v
	r.next++
	if r.next == len(r.vals) {
		r.next, r.full = 0, true
	}
}

// len is how many values the ring holds.
func (r *ring[T]) len() int {
	if r.full {
		return len(r.vals)
	}
	return r.next
}

// last is the newest value (the zero value when empty).
func (r *ring[T]) last() T {
	var zero T
	if r.len() == 0 {
		return zero
	}
	return r.vals[(r.next-1+len(r.vals))%len(r.vals)]
}

// values copies the values out, oldest first.
func (r *ring[T]) values() []T {
	out := make([]T, 0, r.len())
	if r.full {
		out = append(out, r.vals[r.next:]...)
	}
	return append(out, r.vals[:r.next]...)
}

// Point is the traffic of one step: bytes moved during it, by direction
// (in = towards the home).
type Point struct {
	In, Out uint64
}

// Series is a stretch of a series as a chart draws it: values one Step
// apart, the last ending at End.
type Series[T any] struct {
	Step   time.Duration
	End    time.Time
	Values []T
}

// Start is the time the first value's step began.
func (s Series[T]) Start() time.Time { return s.End.Add(-time.Duration(len(s.Values)) * s.Step) }
