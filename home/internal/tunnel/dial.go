package tunnel

// Connections the home opens to a tunnel port on the cloud (direct-tcpip,
// `home connect`) over the supervisor's live connection.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/crypto/ssh"
)

// ErrStopped is returned by Dial once the supervisor has stopped.
var ErrStopped = errors.New("tunnel: supervisor stopped")

// Dial opens a direct-tcpip channel to 127.0.0.1:port on the cloud over the
// live connection, waiting for one until ctx ends or the supervisor stops. The cloud allows only the
// tunnel ports of private mappings of the same account (`home connect`).
func (s *Supervisor) Dial(ctx context.Context, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("tunnel: port %d is not in 1..65535", port)
	}
	for {
		s.mu.Lock()
		client, up := s.live, s.up
		s.mu.Unlock()
		if client != nil {
			c, err := client.DialContext(ctx, "tcp", net.JoinHostPort(forwardBindAddr, strconv.Itoa(port)))
			var refused *ssh.OpenChannelError
			if errors.As(err, &refused) {
				return nil, fmt.Errorf("tunnel: the cloud refused a connection to tunnel port %d: %s", port, refused.Message)
			}
			if err != nil {
				return nil, fmt.Errorf("tunnel: dial tunnel port %d: %w", port, err)
			}
			return c, nil
		}
		select {
		case <-up:
		case <-s.done:
			if st := s.Status(); st.State == StateReplaced {
				return nil, st.LastError // where the profile runs now
			}
			return nil, ErrStopped
		case <-ctx.Done():
			return nil, fmt.Errorf("tunnel: not connected to the cloud (%s): %w", s.Status().State, ctx.Err())
		}
	}
}
