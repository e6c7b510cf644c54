package sshd

import "github.com/prometheus/client_golang/prometheus/testutil"

// SetAfterAuth runs f between a login's authentication and the
// registration of its session (tests of the key-rotation race).
func SetAfterAuth(s *Server, f func()) { s.afterAuth = f }

// SpareChannels is the value of the homeport_ssh_spare_channels gauge.
func SpareChannels(s *Server) float64 { return testutil.ToFloat64(s.metrics.spares) }
