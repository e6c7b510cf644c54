package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"homeport.dev/proto"
	"homeport.dev/proto/atomicfile"
)

// Forward is one thing the home exposes, as config.yaml's forwards: lists
// it: the public side (an http/https host, a tcp public port, or a private
// name) and the local service behind it. What the cloud assigned to it
// (mapping, tunnel port) is cache, not configuration (cache.go).
type Forward struct {
	Scheme     string `yaml:"scheme"`
	Host       string `yaml:"host,omitempty"`
	PublicPort int    `yaml:"public_port,omitempty"`
	// Private forwards are never public; Name tells them apart.
	Private bool   `yaml:"private,omitempty"`
	Name    string `yaml:"name,omitempty"`
	Target  string `yaml:"target"`
	// Mode is https only: terminate or passthrough.
	Mode string `yaml:"mode,omitempty"`
	// ProxyProtocol sends a PROXY v2 header with the visitor's address to
	// the local service.
	ProxyProtocol bool `yaml:"proxy_protocol,omitempty"`
	// DeployPath, for http and https, receives fullchain.pem and
	// privkey.pem after every issuance of the name's certificate.
	DeployPath string `yaml:"deploy_path,omitempty"`
	// Enabled is true when left out; false keeps the forward without its
	// cloud mapping (home forwards close).
	Enabled *bool `yaml:"enabled,omitempty"`
}

// Https modes.
const (
	ModePassthrough = "passthrough" // TLS goes through to a local TLS service
	ModeTerminate   = "terminate"   // the home terminates TLS with its own certificate
)

// IsEnabled is Enabled with its default.
func (f Forward) IsEnabled() bool { return f.Enabled == nil || *f.Enabled }

// Key is the forward's public side, unique in a profile: https://host,
// tcp:PORT or private:NAME. The cache and the cloud's mappings are matched
// by it.
func (f Forward) Key() string {
	switch {
	case f.Private && f.Host == "":
		return "private:" + f.Name
	case f.Scheme == proto.SchemeTCP:
		return fmt.Sprintf("tcp:%d", f.PublicPort)
	}
	return f.Scheme + "://" + f.Host
}

// FieldError is a problem with one field of a forward.
type FieldError struct {
	Field string // scheme, host, public_port, name, target, mode, deploy_path
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

var forwardNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// NormalizeForward validates f and fills its defaults (a lower-case host,
// localhost for a bare target port, terminate for an https forward without
// a mode); allowLAN is features.lan_forwarding. Errors are *FieldError.
func NormalizeForward(f Forward, allowLAN bool) (Forward, error) {
	bad := func(field string, err error) (Forward, error) { return f, &FieldError{Field: field, Err: err} }
	if err := proto.ValidateScheme(f.Scheme); err != nil {
		return bad("scheme", err)
	}
	f.Host = proto.NormalizeHostname(f.Host)
	switch {
	case f.Scheme == proto.SchemeTCP && f.Private:
		if !forwardNameRE.MatchString(f.Name) {
			return bad("name", fmt.Errorf("a private entry needs a name of 1-32 characters a-z, 0-9 and -, like gpu-ui (got %s)", proto.Printable(f.Name)))
		}
		f.PublicPort, f.Host = 0, ""
	case f.Scheme == proto.SchemeTCP:
		if err := proto.ValidatePort(f.PublicPort); err != nil {
			return bad("public_port", fmt.Errorf("public port: %w", err))
		}
		f.Host, f.Name = "", ""
	default:
		if err := proto.ValidateHostname(f.Host); err != nil {
			return bad("host", err)
		}
		if f.Private && f.Name != "" && !forwardNameRE.MatchString(f.Name) {
			// The cloud's name for it (it requires one): home connect finds it by that.
			return bad("name", fmt.Errorf("a private entry's name is 1-32 characters a-z, 0-9 and -, like gpu-ui (got %s)", proto.Printable(f.Name)))
		}
		if !f.Private {
			f.Name = ""
		}
		f.PublicPort = 0
	}
	switch {
	case f.Scheme != proto.SchemeHTTPS:
		f.Mode = ""
	case f.Mode == "":
		// The home's own certificate in front of a plain-HTTP service;
		// callers that can, probe the target first (entries.Probe).
		f.Mode = ModeTerminate
	case f.Mode != ModePassthrough && f.Mode != ModeTerminate:
		return bad("mode", fmt.Errorf("mode %s is not passthrough (a local TLS service) or terminate (a local plain-HTTP service)", proto.Printable(f.Mode)))
	}
	if f.DeployPath != "" {
		switch {
		case f.Scheme == proto.SchemeTCP:
			return bad("deploy_path", errors.New("a deploy path is for the certificate of an http or https name; tcp entries have none"))
		case !filepath.IsAbs(f.DeployPath) || strings.ContainsAny(f.DeployPath, "\x00\n"):
			return bad("deploy_path", fmt.Errorf("deploy path %s must be an absolute directory", proto.Printable(f.DeployPath)))
		}
		f.DeployPath = filepath.Clean(f.DeployPath)
	}
	target, err := CheckTarget(f.Target, allowLAN)
	if err != nil {
		return bad("target", err)
	}
	f.Target = target
	return f, nil
}

// CheckTarget validates a local target host:port and applies the LAN
// policy: only this machine unless features.lan_forwarding is true.
func CheckTarget(target string, allowLAN bool) (string, error) {
	target = strings.TrimSpace(target)
	if !strings.Contains(target, ":") {
		target = "localhost:" + target // "--to 3000" means this machine
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" {
		return "", fmt.Errorf("target %s must be HOST:PORT, like localhost:3000", proto.Printable(target))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("target port %s must be 1-65535", proto.Printable(port))
	}
	if !IsLocal(host) {
		if ip := net.ParseIP(host); ip == nil {
			if err := proto.ValidateHostname(strings.ToLower(host)); err != nil && !forwardNameRE.MatchString(strings.ToLower(host)) {
				return "", fmt.Errorf("target host %s is not a valid name or IP address", proto.Printable(host))
			}
		}
		if !allowLAN {
			return "", fmt.Errorf("target %s is not on this machine; forwarding to other hosts on your network is off: set features.lan_forwarding: true in config.yaml to allow it", proto.Printable(target))
		}
	}
	return target, nil
}

// IsLocal reports whether host names this machine.
func IsLocal(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateForwards normalizes a forwards: list, naming the field of every
// problem (forwards[2].target: ...), duplicates included.
func ValidateForwards(fs []Forward, allowLAN bool) ([]Forward, error) {
	var errs []error
	out := make([]Forward, len(fs))
	seen := map[string]int{}
	for i, f := range fs {
		n, err := NormalizeForward(f, allowLAN)
		var fe *FieldError
		switch {
		case errors.As(err, &fe):
			errs = append(errs, fmt.Errorf("forwards[%d].%s: %v", i, fe.Field, fe.Err))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("forwards[%d]: %v", i, err))
			continue
		}
		if j, dup := seen[n.Key()]; dup {
			errs = append(errs, fmt.Errorf("forwards[%d]: %s is already forwards[%d]; a public side is exposed once", i, n.Key(), j))
			continue
		}
		seen[n.Key()] = i
		out[i] = n
	}
	return out, errors.Join(errs...)
}

// ReadForwards reads the forwards: list of the config.yaml at file, as the
// user wrote it now, validated (allowLAN from the same file's features).
func ReadForwards(file string) ([]Forward, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// Unknown keys inside a forward are typos that would silently change
	// what is exposed: refuse them, naming the forward.
	if err := strictForwards(b); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var c struct {
		Forwards []Forward `yaml:"forwards"`
		Features Features  `yaml:"features"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	fs, err := ValidateForwards(c.Forwards, c.Features.LANForwarding)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, indent(err))
	}
	return fs, nil
}

// strictForwards checks each key of each forward on its own, so a typo or
// a value of the wrong type is named as forwards[I].KEY with its line.
func strictForwards(b []byte) error {
	var c struct {
		Forwards yaml.Node `yaml:"forwards"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return err
	}
	switch c.Forwards.Kind {
	case 0:
		return nil
	case yaml.SequenceNode:
	default:
		if c.Forwards.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("forwards (line %d): must be a list of forwards", c.Forwards.Line)
	}
	known := map[string]bool{}
	ft := reflect.TypeOf(Forward{})
	for i := 0; i < ft.NumField(); i++ {
		known[strings.Split(ft.Field(i).Tag.Get("yaml"), ",")[0]] = true
	}
	for i, n := range c.Forwards.Content {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("forwards[%d] (line %d): must be a mapping (scheme:, host:, target: ...)", i, n.Line)
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			if !known[k.Value] {
				return fmt.Errorf("forwards[%d].%s (line %d): unknown field; a forward has scheme, host, public_port, private, name, target, mode, proxy_protocol, deploy_path and enabled", i, k.Value, k.Line)
			}
			var f Forward
			one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{k, v}}
			if err := one.Decode(&f); err != nil {
				msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "unmarshal errors:\n")
				msg = regexp.MustCompile(`^\s*line \d+: `).ReplaceAllString(msg, "")
				return fmt.Errorf("forwards[%d].%s (line %d): %s", i, k.Value, v.Line, msg)
			}
		}
	}
	return nil
}

// ForwardsEdit is the forwards: list of a config.yaml being edited as YAML
// nodes, so the user's comments, order and every other setting stay as
// they were.
type ForwardsEdit struct {
	root *yaml.Node // the document's top mapping
	seq  *yaml.Node // forwards: (nil until one is added)
}

// Len is the number of forwards.
func (e *ForwardsEdit) Len() int {
	if e.seq == nil {
		return 0
	}
	return len(e.seq.Content)
}

// Index is the position of the forward with key (Forward.Key), or -1.
func (e *ForwardsEdit) Index(key string) int {
	for i := 0; i < e.Len(); i++ {
		var f Forward
		if e.seq.Content[i].Decode(&f) == nil {
			if n, err := NormalizeForward(f, true); err == nil && n.Key() == key || f.Key() == key {
				return i
			}
		}
	}
	return -1
}

// Append adds f at the end of the list (creating forwards: if needed).
func (e *ForwardsEdit) Append(f Forward) error {
	var n yaml.Node
	if err := n.Encode(f); err != nil {
		return err
	}
	if e.seq == nil {
		e.seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		e.root.Content = append(e.root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "forwards"}, e.seq)
	}
	e.seq.Content = append(e.seq.Content, &n)
	return nil
}

// Remove deletes forward i with its comments.
func (e *ForwardsEdit) Remove(i int) {
	e.seq.Content = append(e.seq.Content[:i], e.seq.Content[i+1:]...)
}

// SetEnabled opens or closes forward i: enabled: false, or true where the
// user wrote the key (left out, true is the default).
func (e *ForwardsEdit) SetEnabled(i int, on bool) {
	m := e.seq.Content[i]
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == "enabled" {
			m.Content[j+1].Kind, m.Content[j+1].Tag, m.Content[j+1].Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(on)
			return
		}
	}
	if !on {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "enabled"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	}
}

// removeKey deletes a top-level key (the database: of old profiles).
func (e *ForwardsEdit) removeKey(key string) bool {
	for i := 0; i+1 < len(e.root.Content); i += 2 {
		if e.root.Content[i].Value == key {
			e.root.Content = append(e.root.Content[:i], e.root.Content[i+2:]...)
			return true
		}
	}
	return false
}

// EditForwards runs edit on the forwards: of the config.yaml at file and
// writes the result atomically with mode 0600. Callers validate what they
// add and serialise edits of one profile (Profile.Lock): this is a
// read-modify-write.
func EditForwards(file string, edit func(*ForwardsEdit) error) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s is not a YAML mapping", file)
	}
	e := &ForwardsEdit{root: doc.Content[0]}
	for i := 0; i+1 < len(e.root.Content); i += 2 {
		if e.root.Content[i].Value == "forwards" {
			switch v := e.root.Content[i+1]; {
			case v.Kind == yaml.SequenceNode:
				e.seq = v
			case v.Tag == "!!null":
				*v = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", HeadComment: v.HeadComment, LineComment: v.LineComment}
				e.seq = v
			default:
				return fmt.Errorf("%s: forwards: must be a list", file)
			}
		}
	}
	if err := edit(e); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(indentOf(b))
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return atomicfile.Write(file, buf.Bytes(), 0o600)
}

// indentOf guesses the indentation the user writes with (the smallest
// indentation of a key), so an edit does not re-indent the whole file;
// yaml.v3's 4 when nothing is indented yet.
func indentOf(b []byte) int {
	best := 0
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		n := len(line) - len(trimmed)
		if n == 0 || trimmed == "" || trimmed[0] == '#' || trimmed[0] == '-' {
			continue
		}
		if best == 0 || n < best {
			best = n
		}
	}
	if best < 2 || best > 8 {
		return 4
	}
	return best
}
