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
		Pattern: "rotate/" + namePattern(),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": nameField(),
			"graceful": {
				Type:    framework.TypeBool,
				Default: false,
				Description: "Answer at once, without calling Cisco, with rotates_at: from now on creds report ttl 1, so every " +
					"consumer re-reads every 2 s, and the tick rotates once every consumer's longest wait has passed (about a " +
					"minute). For a planned rotation: no consumer holds the old key for more than 2 s after it. A second " +
					"request joins the first; a plain rotate supersedes it. Default false: rotate before answering, as a " +
					"compromised key needs.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: forwardedWrite(b.withValidName(b.pathRotateWrite), "rotate"),
		},
		HelpSynopsis:    pathRotateHelpSyn,
		HelpDescription: pathRotateHelpDesc,
	}}
}

func (b *backend) pathRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if d.Get("graceful").(bool) {
		k, resp, err := b.requestGraceful(ctx, req.Storage, req.MountPoint, name)
		if k == nil {
			return resp, err
		}
		return &logical.Response{Data: map[string]interface{}{
			"access_key_id": k.AccessKeyID(),
			"version":       k.Version(),
			"rotates_at":    formatTime(k.GracefulAt()),
		}}, nil
	}
	k, err := b.rotate(ctx, req.Storage, name, triggerManual)
	if err != nil {
		return rotateErrorResponse(req.MountPoint, name, err)
	}
	return keyResponse(k), nil
}

// rotateErrorResponse maps a rotation error: caller mistakes are 400s,
// Cisco's failures 502s, a lost key a 500, each with its message alone.
func rotateErrorResponse(mount, name string, err error) (*logical.Response, error) {
	var ce *cisco.Error
	var lost *lostKeyError
	var limited *cisco.RateLimitedError
	switch {
	case errors.As(err, &limited):
		return errorStatus(http.StatusTooManyRequests, "rotation not started: "+err.Error())
	case errors.Is(err, cisco.ErrAPIKeyBusy):
		return errorStatus(http.StatusServiceUnavailable, "rotation not started: "+err.Error())
	case errors.Is(err, errNotConfigured):
		return notConfiguredResponse(name), nil
	case errors.As(err, &ce) && ce.NotEnabled:
		return logical.ErrorResponse("rotation failed: %s", err), nil
	case errors.As(err, &ce):
		return errorStatus(http.StatusBadGateway, "rotation failed: "+err.Error())
	case errors.As(err, &lost):
		return errorStatus(http.StatusInternalServerError, fmt.Sprintf("%s; a new rotation is needed: vault write -f %s", err, cliPath(mount, "rotate/"+name)))
	case errors.Is(err, logical.ErrReadOnly):
		return nil, err
	}
	// Storage's and Vault's own errors (sealed, a standby, a request that
	// ended): Vault picks their status.
	return nil, fmt.Errorf("rotation failed: %w", err)
}

const pathRotateHelpSyn = "Rotate an organization's S3 bucket key now."

const pathRotateHelpDesc = `
Calls Cisco's "Refresh S3 Bucket Key" API, stores the new key and returns its
id and version. The secret is never returned here: read it from creds/<name>.
Concurrent requests for one organization share a single Cisco call.

Cisco answers "Not found IAM key info" until the first rotation of an
organization has been done once in Cisco's dashboard.

With graceful=true the request answers at once with rotates_at, and the
rotation runs at the first tick after it; until then consumers re-read every
2 s. The pending request is stored with the key, so it survives a restart;
disable_automated_rotation does not stop it; deleting the config cancels it.

Example:

  $ vault write -f cisco-s3/rotate/acme
  $ vault write cisco-s3/rotate/acme graceful=true
`
