// Command hello is the sample service of the demo: a tiny web app that says
// who asked, so you can see the visitor's address arrive through the tunnel.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8090", "address to serve on")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from home!\nhost: %s\nvisitor: %s\nvia: X-Forwarded-For=%s X-Forwarded-Proto=%s\n",
			r.Host, r.RemoteAddr, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	})
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("hello: serving on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}
