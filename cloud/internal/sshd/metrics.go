package sshd

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	homes        prometheus.Gauge
	forwards     prometheus.Gauge
	connects     prometheus.Counter
	disconnects  prometheus.Counter
	takeovers    prometheus.Counter
	bytesVec     *prometheus.CounterVec
	channels     prometheus.Gauge
	spares       prometheus.Gauge
	viaSpare     prometheus.Counter // visitors by how their channel came
	viaOpen      prometheus.Counter
	refusals     *prometheus.CounterVec
	acceptErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		homes:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_connected_homes", Help: "Homes with a live SSH connection."}),
		forwards:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_forwards", Help: "Remote forwards listening."}),
		connects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_connects_total", Help: "Home SSH connections established."}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_disconnects_total", Help: "Home SSH connections ended."}),
		takeovers:   prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_takeovers_total", Help: "Home SSH connections replaced by a newer login of the same home (two copies of one profile flapping show here)."}),
		bytesVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "homeport_ssh_bytes_total", Help: "Bytes through home tunnels by direction (in = towards the home)."},
			[]string{"home", "direction"}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_channels", Help: "Open tunnel channels (forwarded-tcpip and direct-tcpip)."}),
		spares:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_spare_channels", Help: "Forwarded-tcpip channels opened ahead of visitors, not yet used."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "homeport_ssh_refusals_total", Help: "Connections, channels and requests refused over a budget, by reason."},
			[]string{"reason"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_accept_errors_total", Help: "Temporary accept errors of the SSH endpoint (EMFILE...), each retried."}),
	}
	visitors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "homeport_ssh_visitor_channels_total", Help: "Visitors of tunnel ports handed to homes, by how their channel came: a spare opened ahead of them, or one opened for them."},
		[]string{"channel"})
	m.viaSpare, m.viaOpen = visitors.WithLabelValues("spare"), visitors.WithLabelValues("opened")
	if reg != nil {
		reg.MustRegister(m.homes, m.forwards, m.connects, m.disconnects, m.takeovers, m.bytesVec, m.channels, m.spares, visitors, m.refusals, m.acceptErrors)
	}
	return m
}

func (m *metrics) bytes(home string, in, out int64) {
	m.bytesVec.WithLabelValues(home, "in").Add(float64(in))
	m.bytesVec.WithLabelValues(home, "out").Add(float64(out))
}

func itoa(n int) string { return strconv.Itoa(n) }
