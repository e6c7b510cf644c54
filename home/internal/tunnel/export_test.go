package tunnel

// Batched returns c with proto/batchconn under the SSH transport, so the
// benchmark can compare it with the bare connection the supervisor uses.
func Batched(c Config) Config {
	c.batched = true
	return c
}
