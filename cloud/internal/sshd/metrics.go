package sshd

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	homes       prometheus.Gauge
	forwards    prometheus.Gauge
	connects    prometheus.Counter
	disconnects prometheus.Counter
	bytesVec    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		homes:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_connected_homes", Help: "Homes with a live SSH connection."}),
		forwards:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "homeport_ssh_forwards", Help: "Remote forwards listening."}),
		connects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_connects_total", Help: "Home SSH connections established."}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "homeport_ssh_disconnects_total", Help: "Home SSH connections ended."}),
		bytesVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "homeport_ssh_bytes_total", Help: "Bytes through home tunnels by direction (in = towards the home)."},
			[]string{"home", "direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.homes, m.forwards, m.connects, m.disconnects, m.bytesVec)
	}
	return m
}

func (m *metrics) bytes(home string, in, out int64) {
	m.bytesVec.WithLabelValues(home, "in").Add(float64(in))
	m.bytesVec.WithLabelValues(home, "out").Add(float64(out))
}

func itoa(n int) string { return strconv.Itoa(n) }
