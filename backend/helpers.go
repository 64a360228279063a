package backend

// Small helpers of the backend's own. internal/cisco and internal/stscheck
// keep their own copies, so that no package shares code with Vault's side.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errorStatus answers msg with an HTTP status of its own, in Vault's
// {"errors": [...]} shape. Returned as an error instead, Vault's core would
// wrap it: "1 error occurred: * ...".
func errorStatus(code int, msg string) (*logical.Response, error) {
	body, err := json.Marshal(map[string][]string{"errors": {msg}})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  code,
	}}, nil
}
