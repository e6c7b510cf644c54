package sshd

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"homeport.dev/cloud/internal/budget"
)

// refusalLog writes a refusal's log line at most once per home and reason
// every interval, with the number of refusals it stood for, so a home that
// floods the edge with requests cannot also flood its log.
type refusalLog struct {
	logger   *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	last map[[2]string]*refusalEntry
}

type refusalEntry struct {
	at         time.Time
	suppressed int
}

func newRefusalLog(log *slog.Logger, interval time.Duration) *refusalLog {
	return &refusalLog{logger: log, interval: interval, last: map[[2]string]*refusalEntry{}}
}

func (r *refusalLog) log(home, reason, msg string, args ...any) {
	now := time.Now()
	key := [2]string{home, reason}
	r.mu.Lock()
	e := r.last[key]
	if e != nil && now.Sub(e.at) < r.interval {
		e.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := 0
	if e != nil {
		suppressed = e.suppressed
	}
	if len(r.last) > 10000 {
		// Forget old entries rather than grow without bound.
		for k, v := range r.last {
			if now.Sub(v.at) >= r.interval {
				delete(r.last, k)
			}
		}
	}
	r.last[key] = &refusalEntry{at: now}
	r.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "similar_refusals_not_logged", suppressed)
	}
	r.logger.Warn(msg, args...)
}

// reasonOf is a budget refusal's reason, as a metric label.
func reasonOf(err error) string {
	var r *budget.Refusal
	if errors.As(err, &r) {
		return string(r.Reason)
	}
	return "other"
}
