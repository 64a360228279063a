package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

func pathVerify(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "verify/" + namePattern(),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": nameField(),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: forwardedWrite(b.withValidName(b.pathVerifyWrite), "verify"),
		},
		HelpSynopsis:    pathVerifyHelpSyn,
		HelpDescription: pathVerifyHelpDesc,
	}}
}

func (b *backend) pathVerifyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e, resp, err := b.configuredOrg(ctx, req.Storage, name)
	if e == nil {
		return resp, err
	}
	if !e.key.HasKey() {
		return noKeyResponse(req.MountPoint, name), nil
	}
	// The check runs without the name's lock: a rotation must not wait
	// for AWS. Its result is recorded only on the key it checked.
	cfg, checked := e.config, e.key
	r := b.checkKey(ctx, cfg, checked, checkVerify)
	now := b.now()
	current := e
	if err := b.afterCheck(ctx, req.Storage, name, "record the verify check", func(o *lockedOrg) {
		o.recordServedCheck(ctx, checked, r, now, checkVerify)
		current = o.e
	}); err != nil {
		return nil, err
	}

	data := map[string]interface{}{
		"access_key_id": checked.AccessKeyID(),
		"version":       checked.Version(),
		"result":        string(r.Outcome),
		"checked_at":    now.UTC().Format(time.RFC3339),
		"sts_url":       cfg.stsURL(),
		"account":       r.Account,
		"arn":           r.ARN,
		"reason":        r.Reason,
	}
	resp = &logical.Response{Data: data}
	if r.Outcome != stscheck.Valid {
		resp.AddWarning("the served key did not pass the check: " + r.String())
	}
	if current == nil || current.key == nil || current.key.Version() != checked.Version() {
		resp.AddWarning("a new key was stored while this one was checked; check again to check the new key")
	}
	return resp, nil
}

const pathVerifyHelpSyn = "Check the served key against AWS STS now."

const pathVerifyHelpDesc = `
Signs an AWS STS GetCallerIdentity call with the served key and answers the
result: "valid" with the key's account and ARN, "invalid" when AWS rejects
the key id (InvalidClientTokenId) or its secret (SignatureDoesNotMatch), or
"unknown" when AWS gave no answer about the key (network error, 5xx,
throttling). The call needs no IAM permission. The result is recorded on the
key as key_verified_at or key_verify_error. It runs even when key_check is
false on the config. Never returns the secret.

Example:

  $ vault write -f cisco-s3/verify/acme
`
