package proto

import (
	"bytes"
	"encoding/json"
)

// Optional distinguishes a JSON field that is absent from one that is null:
// PATCH uses absent for "leave as is" and null for "remove".
type Optional[T any] struct {
	Set   bool // the field was present
	Value *T   // nil when present and null
}

// Some returns a set Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: &v} }

// Null returns a set Optional holding null.
func Null[T any]() Optional[T] { return Optional[T]{Set: true} }

// UnmarshalJSON is called only when the field is present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// MarshalJSON writes the value or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// IsZero lets `omitzero` drop an unset Optional.
func (o Optional[T]) IsZero() bool { return !o.Set }
