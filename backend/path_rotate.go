package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

func pathRotate(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "rotate/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": nameField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: forwardedWrite(b.pathRotateWrite, "rotate"),
		},
		HelpSynopsis:    pathRotateHelpSyn,
		HelpDescription: pathRotateHelpDesc,
	}}
}

func (b *backend) pathRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	k, err := b.rotate(ctx, req.Storage, name, triggerManual)
	if err != nil {
		return rotateErrorResponse(name, err)
	}
	return keyResponse(k), nil
}

// rotateErrorResponse maps a rotation error: caller mistakes are 400s,
// Cisco's failures 502s, our own 500s.
func rotateErrorResponse(name string, err error) (*logical.Response, error) {
	var ce *cisco.Error
	var lost *lostKeyError
	var limited *cisco.RateLimitedError
	switch {
	case errors.As(err, &limited):
		return nil, logical.CodedError(http.StatusTooManyRequests, "rotation not started: "+err.Error())
	case errors.Is(err, cisco.ErrAPIKeyBusy):
		return nil, logical.CodedError(http.StatusServiceUnavailable, "rotation not started: "+err.Error())
	case errors.Is(err, errNotConfigured):
		return notConfiguredResponse(name), nil
	case errors.As(err, &ce) && ce.NotEnabled:
		return logical.ErrorResponse("rotation failed: %s", err), nil
	case errors.As(err, &ce):
		return nil, logical.CodedError(http.StatusBadGateway, "rotation failed: "+err.Error())
	case errors.As(err, &lost):
		return nil, err
	case errors.Is(err, logical.ErrReadOnly):
		return nil, err
	}
	return nil, fmt.Errorf("rotation failed: %w", err)
}

const pathRotateHelpSyn = "Rotate an organization's S3 bucket key now."

const pathRotateHelpDesc = `
Calls Cisco's "Refresh S3 Bucket Key" API, stores the new key and returns its
id and version. The secret is never returned here: read it from creds/<name>.
Concurrent requests for one organization share a single Cisco call.

Cisco answers "Not found IAM key info" until the first rotation of an
organization has been done once in Cisco's dashboard.

Example:

  $ vault write -f cisco-s3/rotate/acme
`
