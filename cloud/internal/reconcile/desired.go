// Package reconcile makes HAProxy follow the database: it derives the
// routing maps from the mappings, pushes every change through the runtime
// API, keeps the map files current for restarts, and periodically repairs
// any drift with as few commands as possible.
package reconcile

import (
	"sort"
	"strconv"

	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// State is the content of every routing map: map -> key -> tunnel port.
type State map[haproxy.Map]map[string]string

func emptyState() State {
	s := State{}
	for _, m := range haproxy.Maps() {
		s[m] = map[string]string{}
	}
	return s
}

// route returns where a mapping lives in HAProxy; ok is false for private
// mappings, which are never routed publicly.
func route(m store.Mapping) (haproxy.Map, haproxy.Entry, bool) {
	if m.Private {
		return "", haproxy.Entry{}, false
	}
	v := strconv.Itoa(m.TunnelPort)
	switch m.Scheme {
	case proto.SchemeHTTPS:
		return haproxy.MapHTTPS, haproxy.Entry{Key: m.HostName(), Value: v}, true
	case proto.SchemeHTTP:
		return haproxy.MapHTTP, haproxy.Entry{Key: m.HostName(), Value: v}, true
	case proto.SchemeTCP:
		return haproxy.MapTCP, haproxy.Entry{Key: strconv.Itoa(m.Port()), Value: v}, true
	}
	return "", haproxy.Entry{}, false
}

// Desired derives the routing maps from mappings. A routed mapping with
// proxy_protocol off also lists its tunnel port in the raw map.
func Desired(ms []store.Mapping) State {
	s := emptyState()
	for _, m := range ms {
		if name, e, ok := route(m); ok {
			s[name][e.Key] = e.Value
			if !m.ProxyProtocol {
				s[haproxy.MapRaw][e.Value] = e.Value
			}
		}
	}
	return s
}

// Key names one entry of one routing map.
type Key struct {
	Map haproxy.Map
	Key string
}

// Touched lists the entries a created or deleted mapping may change: its
// route, and its tunnel port in the raw map. Private mappings touch none.
func Touched(ms ...store.Mapping) []Key {
	var out []Key
	for _, m := range ms {
		if name, e, ok := route(m); ok {
			out = append(out, Key{name, e.Key}, Key{haproxy.MapRaw, e.Value})
		}
	}
	return out
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	out := make(State, len(s))
	for m, kv := range s {
		c := make(map[string]string, len(kv))
		for k, v := range kv {
			c[k] = v
		}
		out[m] = c
	}
	return out
}

// Op is one runtime-API change.
type Op struct {
	Map   haproxy.Map
	Key   string
	Value string // "" deletes
	Had   bool   // the key existed (set rather than add)
}

// Diff lists the changes that turn live into desired, sorted for
// deterministic application.
func Diff(live, desired State) []Op {
	var ops []Op
	for _, m := range haproxy.Maps() {
		for k, v := range desired[m] {
			if lv, ok := live[m][k]; !ok || lv != v {
				ops = append(ops, Op{Map: m, Key: k, Value: v, Had: ok})
			}
		}
		for k := range live[m] {
			if _, ok := desired[m][k]; !ok {
				ops = append(ops, Op{Map: m, Key: k, Had: true})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Map != ops[j].Map {
			return ops[i].Map < ops[j].Map
		}
		return ops[i].Key < ops[j].Key
	})
	return ops
}

// Report pairs every key of desired and live with its drift.
func Report(live, desired State) []proto.Route {
	var out []proto.Route
	for _, m := range haproxy.Maps() {
		keys := map[string]bool{}
		for k := range desired[m] {
			keys[k] = true
		}
		for k := range live[m] {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			r := proto.Route{Map: string(m), Key: k, Desired: desired[m][k], Live: live[m][k]}
			switch {
			case r.Desired == "":
				r.Drift = "unexpected"
			case r.Live == "":
				r.Drift = "missing"
			case r.Live != r.Desired:
				r.Drift = "wrong_port"
			}
			out = append(out, r)
		}
	}
	return out
}

func entries(kv map[string]string) []haproxy.Entry {
	out := make([]haproxy.Entry, 0, len(kv))
	for k, v := range kv {
		out = append(out, haproxy.Entry{Key: k, Value: v})
	}
	return out
}
