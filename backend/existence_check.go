package backend

// The existence check that tells Vault whether a write creates or updates.

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// HandleExistenceCheck wraps the framework's check. The framework parses
// every field before it asks the path whether the name exists, and Vault
// logs at ERROR any error an existence check returns, so a mistyped value
// such as rotation_period=2w used to land in the server log as an error.
// A field that does not parse is the caller's mistake: the check answers
// from the name alone, and the write's handler refuses the field with a
// 400.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	found, exists, err := b.Backend.HandleExistenceCheck(ctx, req)
	var userErr errutil.UserError
	if err == nil || !errors.As(err, &userErr) {
		return found, exists, err
	}
	nameOnly := *req
	nameOnly.Data = nil
	return b.Backend.HandleExistenceCheck(ctx, &nameOnly)
}
