package sshd

// SetAfterAuth runs f between a login's authentication and the
// registration of its session (tests of the key-rotation race).
func SetAfterAuth(s *Server, f func()) { s.afterAuth = f }
