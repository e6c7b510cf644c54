package console

import (
	"fmt"
	"html/template"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/traffic"
	"homeport.dev/proto/chart"
)

// trafficView is a forward's traffic on the dashboard: the figures, and a
// sparkline of the last hour drawn on the server (package chart).
type trafficView struct {
	Text  string
	Chart template.HTML
}

func newTrafficView(st traffic.Stats) trafficView {
	peakIn, peakOut := 0.0, 0.0
	for i := range st.HourIn {
		peakIn, peakOut = max(peakIn, st.HourIn[i]), max(peakOut, st.HourOut[i])
	}
	title := fmt.Sprintf("last hour: peak %s in, %s out", rate(peakIn), rate(peakOut))
	return trafficView{Text: trafficText(st), Chart: chart.SVG(chart.Chart{
		Title: title, Spark: true, Width: 160, Height: 30, Start: st.Start(), Step: st.Step, Min: 1000,
		Lines: []chart.Line{{Name: "in", Class: "in", Values: st.HourIn}, {Name: "out", Class: "out", Values: st.HourOut}},
	})}
}

// trafficText is the figures: bytes since the agent started, by
// direction, and the current rates.
func trafficText(st traffic.Stats) string {
	return fmt.Sprintf("%s in · %s out · now %s in, %s out", size(float64(st.In)), size(float64(st.Out)), rate(st.RateIn), rate(st.RateOut))
}

// size writes a byte count in SI units with two or three digits: 9 B,
// 2.5 MB, 310 GB.
func size(n float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	u := 0
	for n >= 999.5 && u < len(units)-1 {
		n /= 1000
		u++
	}
	if u > 0 && n < 9.95 {
		return fmt.Sprintf("%.1f %s", n, units[u])
	}
	return fmt.Sprintf("%.0f %s", n, units[u])
}

func rate(bps float64) string { return size(bps) + "/s" }

// liveStatus is what the dashboard's event stream sends: the agent's
// status and each forward's traffic figures, by entry ID.
type liveStatus struct {
	control.Status
	Traffic map[uint64]string `json:"traffic"`
}

func (c *Console) liveStatus() liveStatus {
	s := liveStatus{Status: c.a.Status(), Traffic: map[uint64]string{}}
	for _, e := range c.a.Entries() {
		s.Traffic[e.ID] = trafficText(c.a.Traffic(e.Public()))
	}
	return s
}
