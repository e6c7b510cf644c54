package haproxy

import (
	"fmt"
	"os"
	"path/filepath"

	"homeport.dev/proto/atomicfile"
)

// offlineRetryAfter is the Retry-After of the offline page, in seconds: a
// home reconnects within seconds of its network coming back.
const offlineRetryAfter = 30

// offlinePageFile is the offline page's file name in Params.PageDir.
const offlinePageFile = "offline.html"

// OfflinePage is what a visitor of a mapped name gets, with status 503,
// while the name's home is not connected (its tunnel port refuses the
// connection). It names nothing of the edge: no address, port or software,
// and it reloads itself, so the site comes back on its own.
const OfflinePage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>Site offline</title>
<style>
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f5f6f8;color:#1d2433;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:32rem;margin:1.5rem;padding:2rem 2.25rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
h1{margin:0 0 .75rem;font-size:1.4rem}
p{margin:.5rem 0}
.muted{color:#667085;font-size:.9rem}
.brand{margin-top:1.5rem;color:#98a2b3;font-size:.8rem;letter-spacing:.02em}
</style>
</head>
<body>
<main>
<h1>This site's home server is offline</h1>
<p>The server that hosts this site is not connected right now. It may be restarting or have lost its internet connection.</p>
<p class="muted">Nothing is wrong on your side. This page tries again every 30 seconds and shows the site as soon as its server is back.</p>
<p class="brand">homeport</p>
</main>
</body>
</html>
`

// writePages writes the visitor pages the configuration names into dir,
// with the map files' mode (HAProxy reads both).
func writePages(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("haproxy: visitor pages: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, offlinePageFile), []byte(OfflinePage), 0o640); err != nil {
		return fmt.Errorf("haproxy: visitor pages: %w", err)
	}
	return nil
}
