package traffic

import "github.com/prometheus/client_golang/prometheus"

// The series as Prometheus sees them, read at scrape time: the totals, and
// per home the rate of the last step. Per-home labels are bounded by the
// home slots, and a released home's label goes with its series.
var (
	descBytes = prometheus.NewDesc("homeport_traffic_bytes_total",
		"Bytes through all home tunnels as the traffic recorder sampled them, by direction (in = towards the home).", []string{"direction"}, nil)
	descRate = prometheus.NewDesc("homeport_traffic_bytes_per_second",
		"Bytes per second through all home tunnels over the last sampling step, by direction.", []string{"direction"}, nil)
	descHomeRate = prometheus.NewDesc("homeport_traffic_home_bytes_per_second",
		"Bytes per second through one home's tunnel over the last sampling step, by direction.", []string{"home", "direction"}, nil)
)

type collector struct{ r *Recorder }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBytes
	ch <- descRate
	ch <- descHomeRate
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(r.sum.In), "in")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(r.sum.Out), "out")
	total := r.rate(r.total.fine.last())
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, total.In, "in")
	ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, total.Out, "out")
	for _, s := range r.homes {
		rate := r.rate(s.fine.last())
		ch <- prometheus.MustNewConstMetric(descHomeRate, prometheus.GaugeValue, rate.In, s.name, "in")
		ch <- prometheus.MustNewConstMetric(descHomeRate, prometheus.GaugeValue, rate.Out, s.name, "out")
	}
}
