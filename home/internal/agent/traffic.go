package agent

import (
	"time"

	"homeport.dev/home/internal/traffic"
)

// Traffic is the traffic of the forward whose key (store.Entry.Public) is
// key: bytes by direction since the agent started, the current rate and
// the last hour, as the gateway counted them.
func (a *Agent) Traffic(key string) traffic.Stats { return a.traffic.Stats(key, time.Now()) }

// keepTraffic drops the traffic of forwards no longer in the profile.
// Called with a.mu held.
func (a *Agent) keepTraffic() {
	keys := make([]string, len(a.entries))
	for i, e := range a.entries {
		keys[i] = e.Public()
	}
	a.traffic.Keep(keys)
}
