package backend

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathImport(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "import/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": nameField(),
			"access_key_id": {
				Type:        framework.TypeString,
				Description: "Access key ID that Cisco's dashboard showed after the refresh. Required.",
			},
			"secret_access_key": {
				Type:        framework.TypeString,
				Description: "Secret access key that Cisco's dashboard showed after the refresh. Required; never returned by this path.",
				DisplayAttrs: &framework.DisplayAttributes{
					Sensitive: true,
				},
			},
			"key_creation_date": {
				Type:        framework.TypeString,
				Description: "When Cisco created the key: RFC 3339 (2025-03-12T22:00:00Z) or Cisco's zone-less form (2025-03-12T22:00:00, read as UTC). Required; the key's 90 days count from it.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: forwardedWrite(b.pathImportWrite, "import"),
		},
		HelpSynopsis:    pathImportHelpSyn,
		HelpDescription: pathImportHelpDesc,
	}}
}

func (b *backend) pathImportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	now := b.now()
	imported, err := parseImportedKey(d.Get("access_key_id").(string), d.Get("secret_access_key").(string),
		d.Get("key_creation_date").(string), now)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	e, unlock, err := b.lockOrg(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e == nil {
		return notConfiguredResponse(name), nil
	}
	// The id this key replaced; importing the served key again keeps it.
	if prev := e.key; prev != nil {
		imported.OldAccessKeyID = prev.AccessKeyID
		if prev.AccessKeyID == imported.AccessKeyID {
			imported.OldAccessKeyID = prev.OldAccessKeyID
		}
	}
	next := successor(e.key, imported, originImport, now)
	if err := b.putKey(ctx, req.Storage, name, next); err != nil {
		return nil, fmt.Errorf("storing the imported key: %w", err)
	}
	b.setOrgLocked(name, &orgEntry{config: e.config, key: next})
	b.logger.Info("imported an S3 bucket key", "name", name, "version", next.Version, "access_key_id", next.AccessKeyID)
	return keyResponse(next), nil
}

const pathImportHelpSyn = "Store a key that was refreshed in Cisco's dashboard."

const pathImportHelpDesc = `
Cisco's API can rotate an organization's key only after its first rotation
was done once in Cisco's dashboard. Import the key that the dashboard showed,
so that Vault serves it without rotating again. The key is stored as a new
version, and its 90 days count from key_creation_date.

Example:

  $ vault write cisco-s3/import/acme access_key_id=AKIA... \
      secret_access_key=... key_creation_date=2025-03-12T22:00:00
`
