package entries

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

// ProbeTimeout bounds Probe.
const ProbeTimeout = 2 * time.Second

// Probe finds the https mode a local service needs by starting a TLS
// handshake with it (as host): a service that speaks TLS (a handshake, or
// a TLS alert) gets passthrough, anything else terminate. why explains the
// choice; err is set (with mode terminate) when the service could not be
// reached or did not answer, so the choice is a default.
func Probe(ctx context.Context, target, host string) (mode, why string, err error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return store.ModeTerminate, "", fmt.Errorf("nothing answers at %s (%v)", target, err)
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true}) // only asking whether it speaks TLS
	err = tc.HandshakeContext(ctx)
	var remote *net.OpError // a TLS alert from the service
	var rh tls.RecordHeaderError
	switch {
	case err == nil, errors.As(err, &remote) && remote.Op == "remote error":
		return store.ModePassthrough, target + " speaks TLS: passing TLS through to it", nil
	case errors.As(err, &rh):
		return store.ModeTerminate, target + " speaks plain HTTP (not TLS): the home terminates TLS with its own certificate", nil
	}
	return store.ModeTerminate, "", fmt.Errorf("%s did not answer a TLS handshake (%v)", target, err)
}

// ChooseMode fills in the mode of an https entry given none by probing its
// target (Probe), and says what it chose and why; other entries come back
// unchanged with no note. Call it before Normalize.
func ChooseMode(ctx context.Context, e store.Entry, allowLAN bool) (store.Entry, string) {
	if e.Scheme != proto.SchemeHTTPS || e.Mode != "" {
		return e, ""
	}
	target, err := CheckTarget(e.Target, allowLAN)
	if err != nil {
		return e, "" // Normalize reports it
	}
	mode, why, err := Probe(ctx, target, proto.NormalizeHostname(e.Host))
	e.Mode = mode
	if err != nil {
		why = fmt.Sprintf("%v, so the home terminates TLS with its own certificate (the default); pass --mode passthrough for a local TLS service", err)
	}
	return e, "mode " + mode + ": " + why
}
