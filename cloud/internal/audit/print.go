package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"homeport.dev/proto"
)

// Printer writes records for people (a table) or programs (one JSON object
// a line), as `cloud audit` shows them.
type Printer struct {
	W    io.Writer
	JSON bool
}

// Print writes rs in the order given.
func (p Printer) Print(rs []proto.AuditRecord) error {
	if p.JSON {
		enc := json.NewEncoder(p.W)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.W, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", r.At.UTC().Format("2006-01-02T15:04:05Z"), r.ActorKind, r.Actor, r.Addr, r.Kind,
			dash(r.Home), dash(r.Target), change(r.Before, r.After))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// change is "before -> after", or what there is of them.
func change(before, after json.RawMessage) string {
	switch {
	case before != nil && after != nil:
		return string(before) + " -> " + string(after)
	case before != nil:
		return "was " + string(before)
	case after != nil:
		return string(after)
	}
	return ""
}
