package haproxy

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// WorkerRSS returns the resident memory, in KiB, of the worker answering
// the admin socket (read from /proc, so only for an HAProxy on this host):
// what the map entries cost.
func (c *Client) WorkerRSS(ctx context.Context) (int64, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", info.Pid)
}
