package proto

// ClientConfigKind marks a file as a homeport client config.
const ClientConfigKind = "homeport-client-config"

// ClientConfig is the file the cloud's web UI offers as "Download client
// config" (homeport-<slug>.yaml) and `home import` reads: everything the
// agent needs to reach its home, with the SSH host key pinned, and no
// secret (the home proves itself with its own private key).
type ClientConfig struct {
	Kind     string `yaml:"kind" json:"kind"`
	CloudURL string `yaml:"cloud_url" json:"cloud_url"`
	// Slug names the home (the key is "slug" since the first version of
	// this file, which held only the URL, slug and SSH endpoint).
	Slug string `yaml:"slug" json:"slug"`
	// PublicKey is the home's SSH public key: `home import` checks that the
	// private key it is given is its pair.
	PublicKey    string          `yaml:"public_key" json:"public_key"`
	SSH          ClientConfigSSH `yaml:"ssh" json:"ssh"`
	SharedDomain string          `yaml:"shared_domain,omitempty" json:"shared_domain,omitempty"`
}

// ClientConfigSSH is the SSH endpoint in a ClientConfig.
type ClientConfigSSH struct {
	Host    string `yaml:"host" json:"host"`
	Port    int    `yaml:"port" json:"port"`
	User    string `yaml:"user" json:"user"`
	HostKey string `yaml:"host_key" json:"host_key"`
}
