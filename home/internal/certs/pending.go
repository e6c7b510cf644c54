package certs

import "time"

// InService reports whether a certificate is served at now: issued and not
// expired (a failed renewal keeps the previous one in service).
func (i Info) InService(now time.Time) bool {
	return !i.NotAfter.IsZero() && now.Before(i.NotAfter)
}

// PendingNotice is what the owner of an https entry that terminates TLS is
// told while no certificate for its name is in service: visitors get a TLS
// error, which no page can explain to them. info is the name's certificate,
// nil when none is known. It is empty when a certificate is in service.
func PendingNotice(info *Info, now time.Time) string {
	if info != nil && info.InService(now) {
		return ""
	}
	return "certificate pending: visitors see a TLS error until it is issued (" + pendingReason(info) + ")"
}

// pendingReason says why no certificate is in service.
func pendingReason(info *Info) string {
	switch {
	case info == nil:
		return "none obtained yet: the running console obtains it once the entry's tunnel is up"
	case info.State == Failed:
		r := "the last attempt failed: " + info.Error
		if !info.NextAttempt.IsZero() {
			r += "; next attempt " + info.NextAttempt.UTC().Format("2006-01-02 15:04 UTC")
		}
		return r
	case !info.NotAfter.IsZero():
		return "the certificate expired " + info.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
	case info.State == Renewing, info.State == Pending:
		return "being obtained, or waiting for the name's mapping and tunnel"
	}
	return info.Summary()
}
