package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one round trip on the admin socket when
// Client.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// maxPayload bounds one bulk "add map" command including its payload.
// HAProxy 2.6 cannot take a CLI command over its 16 KB buffer: it drops the
// connection without a reply (and is reported to crash from ~16.8 KB), so
// bulk loads are split well below that.
const maxPayload = 12 << 10

// ErrNotFound reports that HAProxy has no entry with the given key.
var ErrNotFound = errors.New("haproxy: entry not found")

// ReplyError is a command HAProxy answered with an error message.
type ReplyError struct {
	Command string // verb and map name, never the payload
	Reply   string // HAProxy's text, e.g. "Unknown map identifier. Please use #<id> or <file>."
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("haproxy: %s: %s", e.Command, e.Reply)
}

// ErrUnknownMap reports that HAProxy has no map of that name: its
// configuration does not load that file (one rendered by an older cloud).
var ErrUnknownMap = errors.New("haproxy: unknown map")

// Is makes errors.Is(err, ErrNotFound) true for HAProxy's "not found"
// replies, and errors.Is(err, ErrUnknownMap) for its "unknown map" ones.
func (e *ReplyError) Is(target error) bool {
	reply := strings.ToLower(e.Reply)
	return target == ErrNotFound && strings.Contains(reply, "not found") ||
		target == ErrUnknownMap && strings.Contains(reply, "unknown map identifier")
}

// Client speaks the HAProxy runtime API over the admin unix socket. Every
// input is validated before it is sent. The zero Timeout means
// DefaultTimeout; it applies to each round trip, within the context's own
// deadline. A Client is safe for concurrent use; callers serialise writes to
// one map themselves (a ReplaceMap drops entries added while it runs).
type Client struct {
	SocketPath string
	Timeout    time.Duration
}

// Info is the subset of "show info" the cloud uses, plus every raw field.
type Info struct {
	Version string
	Pid     int // the worker answering the socket
	Uptime  time.Duration
	Fields  map[string]string
}

// Info runs "show info". A successful answer means HAProxy is serving.
func (c *Client) Info(ctx context.Context) (Info, error) {
	reply, err := c.roundTrip(ctx, "show info\n")
	if err != nil {
		return Info{}, err
	}
	info := Info{Fields: make(map[string]string)}
	for line := range strings.SplitSeq(reply, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			info.Fields[k] = v
		}
	}
	if info.Fields["Name"] == "" {
		return Info{}, replyError("show info", reply)
	}
	info.Version = info.Fields["Version"]
	info.Pid, _ = strconv.Atoi(info.Fields["Pid"])
	if s, err := strconv.Atoi(info.Fields["Uptime_sec"]); err == nil {
		info.Uptime = time.Duration(s) * time.Second
	}
	return info, nil
}

// ShowMap returns the live entries of the map named name (see [MapPath]).
func (c *Client) ShowMap(ctx context.Context, name string) ([]Entry, error) {
	if err := validateMapName(name); err != nil {
		return nil, err
	}
	reply, err := c.roundTrip(ctx, "show map "+name+"\n")
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for line := range strings.SplitSeq(strings.TrimRight(reply, "\n"), "\n") {
		if line == "" {
			continue
		}
		// "<pointer> <key> <value>"
		ptr, rest, ok := strings.Cut(line, " ")
		key, value, ok2 := strings.Cut(rest, " ")
		if !ok || !ok2 || !strings.HasPrefix(ptr, "0x") {
			return nil, replyError("show map "+name, reply)
		}
		entries = append(entries, Entry{Key: key, Value: value})
	}
	return entries, nil
}

// AddMap adds an entry. HAProxy keeps duplicates: adding an existing key
// makes a second entry, and lookups return the first.
func (c *Client) AddMap(ctx context.Context, name, key, value string) error {
	if err := (Entry{Key: key, Value: value}).Validate(); err != nil {
		return err
	}
	return c.mutate(ctx, "add map", name, key, value)
}

// SetMap changes the value of an existing key; ErrNotFound if there is none.
func (c *Client) SetMap(ctx context.Context, name, key, value string) error {
	if err := (Entry{Key: key, Value: value}).Validate(); err != nil {
		return err
	}
	return c.mutate(ctx, "set map", name, key, value)
}

// DelMap removes every entry with key; ErrNotFound if there is none.
func (c *Client) DelMap(ctx context.Context, name, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	return c.mutate(ctx, "del map", name, key)
}

// ClearMap removes every entry of the map.
func (c *Client) ClearMap(ctx context.Context, name string) error {
	return c.mutate(ctx, "clear map", name)
}

// mutate sends "<verb> <name> <args...>", a command that answers nothing on
// success. The caller has validated args.
func (c *Client) mutate(ctx context.Context, verb, name string, args ...string) error {
	if err := validateMapName(name); err != nil {
		return err
	}
	cmd := strings.Join(append([]string{verb, name}, args...), " ")
	reply, err := c.roundTrip(ctx, cmd+"\n")
	if err != nil {
		return err
	}
	return expectEmpty(verb+" "+name, reply)
}

// ReplaceMap atomically replaces the whole content of a map: it prepares a
// new version, loads entries into it in payloads of at most maxPayload bytes,
// and commits it, so lookups see the old map until the commit and the new
// one after. Nothing is sent unless every entry is valid.
func (c *Client) ReplaceMap(ctx context.Context, name string, entries []Entry) (err error) {
	if err := validateMapName(name); err != nil {
		return err
	}
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	reply, err := c.roundTrip(ctx, "prepare map "+name+"\n")
	if err != nil {
		return err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(reply), "New version created: ")
	if _, perr := strconv.ParseUint(v, 10, 32); !ok || perr != nil {
		return replyError("prepare map "+name, reply)
	}
	ver := "@" + v
	defer func() {
		if err != nil {
			// Free the uncommitted version; the live map was never touched.
			if cerr := c.versioned(context.WithoutCancel(ctx), "clear map", ver, name); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()

	// One connection per chunk: measured twice as fast as prompt mode,
	// where HAProxy echoes a "+ " for every payload line.
	header := "add map " + ver + " " + name + " <<\n"
	var b bytes.Buffer
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		b.WriteByte('\n') // an empty line ends the payload
		reply, err := c.roundTrip(ctx, b.String())
		b.Reset()
		if err != nil {
			return err
		}
		return expectEmpty("add map "+ver+" "+name, reply)
	}
	for _, e := range entries {
		line := len(e.Key) + len(e.Value) + 2
		if b.Len() > 0 && b.Len()+line+1 > maxPayload {
			if err := flush(); err != nil {
				return err
			}
		}
		if b.Len() == 0 {
			b.WriteString(header)
		}
		b.WriteString(e.Key)
		b.WriteByte(' ')
		b.WriteString(e.Value)
		b.WriteByte('\n')
	}
	if err := flush(); err != nil {
		return err
	}
	return c.versioned(ctx, "commit map", ver, name)
}

// versioned sends a silent "<verb> @<ver> <name>" command.
func (c *Client) versioned(ctx context.Context, verb, ver, name string) error {
	reply, err := c.roundTrip(ctx, verb+" "+ver+" "+name+"\n")
	if err != nil {
		return err
	}
	return expectEmpty(verb+" "+ver+" "+name, reply)
}

// expectEmpty turns any text in the reply of a silent command into an error.
func expectEmpty(cmd, reply string) error {
	if strings.TrimSpace(reply) != "" {
		return replyError(cmd, reply)
	}
	return nil
}

func replyError(cmd, reply string) error {
	text := strings.TrimSpace(reply)
	if len(text) > 512 {
		text = text[:512] + "..."
	}
	return &ReplyError{Command: cmd, Reply: text}
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// roundTrip sends one command on its own connection and reads the reply up
// to HAProxy closing it (non-interactive mode). The exchange ends at the
// Timeout or when ctx ends, whichever comes first.
func (c *Client) roundTrip(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.SocketPath)
	if err != nil {
		return "", fmt.Errorf("haproxy: dial admin socket: %w", err)
	}
	defer conn.Close()
	// Unblock the write or read below as soon as ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", ioError(ctx, verbOf(cmd), err)
	}
	reply, err := io.ReadAll(conn)
	if err != nil {
		return "", ioError(ctx, verbOf(cmd), err)
	}
	if len(reply) == 0 {
		// Every answer, even a silent success, ends with an empty line;
		// nothing at all means HAProxy dropped the command (it does so
		// for input over its 16 KB buffer).
		return "", fmt.Errorf("haproxy: %s: connection closed without a reply", verbOf(cmd))
	}
	return string(reply), nil
}

// ioError prefers the context's error when the context ended the exchange.
func ioError(ctx context.Context, verb string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("haproxy: %s: %w", verb, ctxErr)
	}
	return fmt.Errorf("haproxy: %s: %w", verb, err)
}

// verbOf returns the first two words of a command, for error messages.
func verbOf(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 2 {
		f = f[:2]
	}
	return strings.Join(f, " ")
}
