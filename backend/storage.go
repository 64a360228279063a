package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// unreadableEntryError is a stored entry that does not decode. It stays so
// until it is deleted or written again, so it is reported, never retried.
type unreadableEntryError struct {
	storageKey string
	reason     string
}

func (e *unreadableEntryError) Error() string {
	return fmt.Sprintf("the stored entry %s cannot be decoded (%s)", e.storageKey, e.reason)
}

// decodeFailure describes a decode error without quoting stored bytes,
// which may hold a secret.
func decodeFailure(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not valid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q holds a %s", strings.TrimPrefix(typ.Field, "."), typ.Value)
	default:
		return "not valid JSON"
	}
}

func getJSON(ctx context.Context, s logical.Storage, key string, v interface{}) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := json.Unmarshal(entry.Value, v); err != nil {
		return false, &unreadableEntryError{storageKey: key, reason: decodeFailure(err)}
	}
	return true, nil
}
