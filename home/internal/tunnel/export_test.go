package tunnel

// Unbuffered returns c with the bare TCP connection under the SSH
// transport, so the benchmark can show what the batching buys.
func Unbuffered(c Config) Config {
	c.unbuffered = true
	return c
}
