package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/mappings"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/cloud/internal/traffic"
	"homeport.dev/proto"
	"homeport.dev/proto/chart"
)

// liveHome is a home as the SSH endpoint and the traffic recorder see it.
type liveHome struct {
	Slug, Owner   string
	Known         bool // met since the cloud started
	Online        bool
	Since         time.Time // connected since, when online
	LastSeen      time.Time
	Addr, Version string
	AgentWarning  string // what fails because of the agent's version
	ForwardsUp    int    // tunnel ports the home's connection listens on
	MappingsUp    int    // mappings whose tunnel port is among them
	Mappings      int
	Certificates  int // reported by the home in the last 7 days
	BytesIn       uint64
	BytesOut      uint64
	Rate          traffic.Rate
	Spark, Chart  template.HTML // the last hour: a sparkline (admin) or a chart (the owner)
	LimitKbps     *int64
	TunnelPorts   proto.PortRange
	CreatedAt     time.Time
}

// adminView is the admin's dashboard.
type adminView struct {
	Homes             []liveHome
	Online, Claimed   int
	BytesIn, BytesOut uint64
	Rate              traffic.Rate
	Routes            proto.RoutesReport
	RoutesErr         string
	Drift             int
	Shaping           string // "" when limits are enforced, else why not
	Charts            []template.HTML
}

// live fills in what the SSH endpoint and the traffic recorder know of h;
// ms are the home's mappings (their state says which forwards are up).
func (w *ui) live(h store.Home, stats map[uint64]sshd.HomeStats, ms []store.Mapping, chartWide bool) liveHome {
	v := liveHome{Slug: h.Slug, Owner: h.User.Username, Mappings: len(ms), LimitKbps: h.BandwidthLimitKbps,
		TunnelPorts: w.Homes.Layout().TunnelPorts(h.Slot), CreatedAt: h.CreatedAt}
	for _, m := range ms {
		if w.Mappings.ToProto(m).State == mappings.StateUp {
			v.MappingsUp++
		}
	}
	if st, ok := stats[h.ID]; ok {
		v.Known, v.Online, v.Since, v.LastSeen = true, st.Online, st.ConnectedSince, st.LastSeen
		v.Addr, v.Version, v.BytesIn, v.BytesOut = st.ClientAddr, st.ClientVersion, st.BytesIn, st.BytesOut
		v.AgentWarning = st.AgentWarning
		v.ForwardsUp = st.ForwardsUp
	}
	if w.Traffic != nil {
		v.Rate = w.Traffic.Rate(h.ID)
		hour, _ := w.Traffic.Home(h.ID, traffic.Hour)
		if chartWide {
			v.Chart = trafficChart("Traffic of "+h.Slug+", last hour", hour, false)
		} else {
			v.Spark = trafficChart(h.Slug+", last hour", hour, true)
		}
	}
	return v
}

// stats is the SSH endpoint's record of every home it met (none without one).
func (w *ui) stats() map[uint64]sshd.HomeStats {
	if w.Live == nil {
		return nil
	}
	return w.Live.Stats()
}

// trafficChart draws a traffic series as rates, in and out.
func trafficChart(title string, s traffic.Series[traffic.Point], spark bool) template.HTML {
	sec := s.Step.Seconds()
	in := make([]float64, len(s.Values))
	out := make([]float64, len(s.Values))
	for i, p := range s.Values {
		in[i], out[i] = float64(p.In)/sec, float64(p.Out)/sec
	}
	return chart.SVG(chart.Chart{Title: title, Start: s.Start(), Step: s.Step, Spark: spark, Format: rate, Min: 1000,
		Lines: []chart.Line{{Name: "to homes", Class: "in", Values: in}, {Name: "from homes", Class: "out", Values: out}}})
}

// adminDashboard is the admin's home page: every home's live state and
// traffic, HAProxy and the shaper, charts; it updates itself (events).
func (w *ui) adminDashboard(c echo.Context) error {
	v, err := w.adminView(c)
	if err != nil {
		return err
	}
	return w.render(c, http.StatusOK, "admin_dashboard", page{Title: "Operator dashboard", Data: v})
}

func (w *ui) adminView(c echo.Context) (adminView, error) {
	var v adminView
	hs, err := w.Homes.ListAll(ctx(c))
	if err != nil {
		return v, err
	}
	ms, err := w.Mappings.ListAll(ctx(c))
	if err != nil {
		return v, err
	}
	byHome := map[uint64][]store.Mapping{}
	for _, m := range ms {
		byHome[m.HomeID] = append(byHome[m.HomeID], m)
	}
	stats := w.stats()
	var certs map[uint64]int
	if w.Certificates != nil {
		if certs, err = w.Certificates(ctx(c)); err != nil {
			return v, err
		}
	}
	for _, h := range hs {
		lh := w.live(h, stats, byHome[h.ID], false)
		lh.Certificates = certs[h.ID]
		v.Homes = append(v.Homes, lh)
		if lh.Online {
			v.Online++
		}
		v.BytesIn += lh.BytesIn
		v.BytesOut += lh.BytesOut
	}
	v.Claimed = len(hs)
	// Online first, each group by name: the homes worth a look on top.
	sort.SliceStable(v.Homes, func(i, j int) bool { return v.Homes[i].Online && !v.Homes[j].Online })
	if w.Routes != nil {
		if v.Routes, err = w.Routes(ctx(c)); err != nil {
			v.RoutesErr = err.Error()
		}
		for _, r := range v.Routes.Routes {
			if r.Drift != "" {
				v.Drift++
			}
		}
	}
	if w.Shaping != nil {
		if err := w.Shaping(); err != nil {
			v.Shaping = err.Error()
		}
	}
	if w.Traffic != nil {
		v.Rate = w.Traffic.TotalRate()
		v.Charts = []template.HTML{
			trafficChart("All traffic, last hour", w.Traffic.Total(traffic.Hour), false),
			trafficChart("All traffic, last day", w.Traffic.Total(traffic.Day), false),
			onlineChart("Connected homes, last hour", w.Traffic.Online(traffic.Hour)),
			onlineChart("Connected homes, last day", w.Traffic.Online(traffic.Day)),
		}
	}
	return v, nil
}

func onlineChart(title string, s traffic.Series[int]) template.HTML {
	vals := make([]float64, len(s.Values))
	for i, n := range s.Values {
		vals[i] = float64(n)
	}
	return chart.SVG(chart.Chart{Title: title, Start: s.Start(), Step: s.Step, Min: 2,
		Format: func(f float64) string { return fmt.Sprintf("%.3g", f) },
		Lines:  []chart.Line{{Name: "online", Class: "online", Values: vals}}})
}

// userLive is the live part of each of the user's homes, by home ID.
func (w *ui) userLive(hs []store.Home, ms map[uint64][]store.Mapping) map[uint64]liveHome {
	stats := w.stats()
	out := map[uint64]liveHome{}
	for _, h := range hs {
		out[h.ID] = w.live(h, stats, ms[h.ID], true)
	}
	return out
}

// refresh is how often a live page is redrawn when nothing connected or
// left (rates and charts move on their own); poll is how often the
// stream looks for a login or a disconnect.
const (
	refresh = 5 * time.Second
	poll    = time.Second
)

// adminEvents streams the admin dashboard's live part.
func (w *ui) adminEvents(c echo.Context) error {
	return w.stream(c, account.ReadAdmin, func() (map[string]template.HTML, error) {
		v, err := w.adminView(c)
		if err != nil {
			return nil, err
		}
		frag, err := w.fragment("admin_dashboard", "admin-live", v)
		return map[string]template.HTML{"admin-live": frag}, err
	})
}

// userEvents streams the live part of each of the user's homes.
func (w *ui) userEvents(c echo.Context) error {
	return w.stream(c, account.ReadOwn, func() (map[string]template.HTML, error) {
		hs, err := w.Homes.List(ctx(c), currentUser(c))
		if err != nil {
			return nil, err
		}
		ms := map[uint64][]store.Mapping{}
		for _, h := range hs {
			if ms[h.ID], err = w.Mappings.List(ctx(c), h.ID); err != nil {
				return nil, err
			}
		}
		live := w.userLive(hs, ms)
		out := map[string]template.HTML{}
		for _, h := range hs {
			if out["live-"+h.Slug], err = w.fragment("dashboard", "home-live", live[h.ID]); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// fragment renders one named block of a page's template.
func (w *ui) fragment(page, name string, data any) (template.HTML, error) {
	var buf bytes.Buffer
	if err := w.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // html/template escaped it
}

// stream sends server-sent events, each a JSON object of element IDs to
// the HTML that replaces their content (the layout's script swaps them):
// at once, whenever a home connects or leaves, and every few seconds. It
// ends with the request, or when the session no longer allows the page
// (logged out, deactivated, a role without the capability need).
func (w *ui) stream(c echo.Context, need account.Capability, render func() (map[string]template.HTML, error)) error {
	res := c.Response()
	res.Header().Set("Content-Type", "text/event-stream")
	res.Header().Set("X-Accel-Buffering", "no")
	res.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(res)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var sent time.Time
	changes := ^uint64(0)
	for {
		now := w.changes()
		if now != changes || time.Since(sent) >= refresh {
			if !w.stillAllowed(c, need) {
				return nil
			}
			frags, err := render()
			if err != nil {
				w.Log.Warn("live page not redrawn", "path", c.Path(), "err", err)
				return nil
			}
			data, err := json.Marshal(frags)
			if err != nil {
				return nil
			}
			// The API server's write timeout would end the stream; each
			// event gets its own.
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(res, "data: %s\n\n", data); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
			changes, sent = now, time.Now()
		}
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-w.Done:
			return nil
		case <-tick.C:
		}
	}
}

func (w *ui) changes() uint64 {
	if w.Live == nil {
		return 0
	}
	return w.Live.Changes()
}

// stillAllowed checks the stream's session again, as a new request would.
func (w *ui) stillAllowed(c echo.Context, need account.Capability) bool {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	u, err := w.Accounts.UserBySession(ctx(c), ck.Value)
	if err != nil {
		return false
	}
	return account.Can(u.Role, need)
}

// byteSize writes a byte count in SI units, as a person reads it.
func byteSize(n uint64) string {
	v := float64(n)
	for _, unit := range []string{"B", "kB", "MB", "GB", "TB"} {
		if v < 1000 || unit == "TB" {
			if unit == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", v, unit)
		}
		v /= 1000
	}
	return ""
}

// rate writes bytes per second.
func rate(v float64) string {
	if v < 0 {
		v = 0
	}
	return byteSize(uint64(v+0.5)) + "/s"
}

// ago writes how long before now t was, coarsely ("3 min ago").
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}
