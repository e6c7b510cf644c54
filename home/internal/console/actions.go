package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/entries"
	"homeport.dev/home/internal/store"
	"homeport.dev/proto"
)

func (c *Console) addDomain(ctx context.Context, ec echo.Context) (string, error) {
	d, err := c.a.Cloud.AddBaseDomain(ctx, c.a.Profile.Cloud.Home, ec.FormValue("domain"))
	if err != nil {
		return "", err
	}
	return "base domain " + d.Domain + " added", nil
}

func (c *Console) removeDomain(ctx context.Context, ec echo.Context) (string, error) {
	d := ec.FormValue("domain")
	return "base domain " + d + " removed", c.a.Cloud.RemoveBaseDomain(ctx, c.a.Profile.Cloud.Home, d)
}

func (c *Console) addEntry(ctx context.Context, ec echo.Context) (string, error) {
	e := store.Entry{Scheme: ec.FormValue("scheme"), Host: ec.FormValue("host"), Target: ec.FormValue("target"),
		Mode: ec.FormValue("mode"), Enabled: true}
	switch e.Scheme {
	case "private": // the form's scheme for a private tcp forward
		e.Scheme, e.Private, e.Name, e.Host = proto.SchemeTCP, true, ec.FormValue("name"), ""
	case proto.SchemeTCP:
		p, err := strconv.Atoi(ec.FormValue("public_port"))
		if err != nil {
			return "", fmt.Errorf("a tcp forward needs the public port (a number in your home's range)")
		}
		e.PublicPort, e.Host = p, ""
	}
	e, note := entries.ChooseMode(ctx, e, c.a.Profile.Features.LANForwarding)
	e, err := entries.Normalize(e, c.a.Profile.Features.LANForwarding)
	if err != nil {
		return "", err
	}
	// The cloud decides first, so a refused mapping leaves nothing behind.
	m, err := c.a.Cloud.CreateMapping(ctx, c.a.Profile.Cloud.Home, entries.Request(e))
	if err != nil {
		return "", err
	}
	e.MappingID, e.TunnelPort = m.ID, m.TunnelPort
	if err := c.a.DB.Add(ctx, &e); err != nil {
		c.a.Cloud.DeleteMapping(ctx, c.a.Profile.Cloud.Home, m.ID)
		return "", err
	}
	if note != "" {
		note = " (" + note + ")"
	}
	if e.Private {
		note += "; reach it from another machine of your account with: home connect " + e.Name
	}
	if err := c.a.Reload(ctx); err != nil {
		// Other entries' errors show on their rows: the add itself worked
		// if the new entry runs.
		for _, x := range c.a.Entries() {
			if x.Public() == e.Public() && x.SyncError == "" && x.TunnelPort != 0 {
				return e.Public() + " added" + note + " (the reload said: " + err.Error() + ")", nil
			}
		}
		return "", err
	}
	return e.Public() + " added" + note, nil
}

// issueCert obtains (renew: replaces) the certificate of the form's domain
// and waits for the outcome (within the action's timeout; the attempt goes
// on in the background beyond it).
func (c *Console) issueCert(renew bool) func(context.Context, echo.Context) (string, error) {
	return func(ctx context.Context, ec echo.Context) (string, error) {
		domain := proto.NormalizeHostname(ec.FormValue("domain"))
		if err := proto.ValidateHostname(domain); err != nil {
			return "", err
		}
		info, err := c.a.IssueCertificate(ctx, domain, renew, nil)
		return domain + ": " + info.Summary(), err
	}
}

func (c *Console) entryAction(ctx context.Context, ec echo.Context) (string, error) {
	id, err := strconv.ParseUint(ec.Param("id"), 10, 64)
	if err != nil {
		return "", fmt.Errorf("no such entry")
	}
	e, err := c.a.DB.Entry(ctx, id)
	if err != nil {
		return "", err
	}
	// IDs are positions in config.yaml: after a hand edit the page's ID
	// may name another forward.
	if key := ec.FormValue("key"); key != "" && key != e.Public() {
		return "", fmt.Errorf("config.yaml's forwards changed since this page was drawn (entry %d is %s now, not %s): nothing done; look again", id, e.Public(), key)
	}
	switch ec.Param("action") {
	case "open", "close":
		e.Enabled = ec.Param("action") == "open"
		if err := c.a.DB.SetEnabled(ctx, e.Public(), e.Enabled); err != nil {
			return "", err
		}
	case "sync":
	case "delete":
		if e.MappingID != 0 {
			if err := c.a.Cloud.DeleteMapping(ctx, c.a.Profile.Cloud.Home, e.MappingID); err != nil && !cloudapi.IsStatus(err, 404) {
				return "", err
			}
		}
		if err := c.a.DB.Remove(ctx, e.Public()); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown action")
	}
	return e.Public() + ": " + ec.Param("action") + " done", c.a.Reload(ctx)
}

func writeEvent(w *echo.Response, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
		return err
	}
	w.Flush()
	return nil
}

func urlQuery(s string) string { return url.QueryEscape(s) }
