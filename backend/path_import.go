package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// clockSkew tolerates a key_creation_date slightly in the future.
const clockSkew = 5 * time.Minute

func pathImport(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "import/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the organization.",
				Required:    true,
			},
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
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathImportWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "import"},
			},
		},
		HelpSynopsis:    pathImportHelpSyn,
		HelpDescription: pathImportHelpDesc,
	}}
}

func (b *backend) pathImportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	name := d.Get("name").(string)
	id := strings.TrimSpace(d.Get("access_key_id").(string))
	secret := strings.TrimSpace(d.Get("secret_access_key").(string))
	dateRaw := d.Get("key_creation_date").(string)
	now := b.now()

	switch {
	case id == "":
		return logical.ErrorResponse("access_key_id is required"), nil
	case !accessKeyIDPattern.MatchString(id):
		return logical.ErrorResponse("access_key_id must be 16 to 128 upper-case letters and digits, e.g. AKIARB5FPGFNZR3BZAXN"), nil
	case secret == "":
		return logical.ErrorResponse("secret_access_key is required"), nil
	case !secretKeyPattern.MatchString(secret):
		// Never echo the value: it is a secret.
		return logical.ErrorResponse("secret_access_key must be 16 to 128 characters of A-Z, a-z, 0-9, /, + and ="), nil
	case strings.TrimSpace(dateRaw) == "":
		return logical.ErrorResponse("key_creation_date is required, e.g. 2025-03-12T22:00:00 (UTC) or 2025-03-12T22:00:00Z"), nil
	}
	created, err := parseKeyCreationDate(dateRaw)
	if err != nil {
		return logical.ErrorResponse("key_creation_date: %s", err), nil
	}
	switch {
	case created.After(now.Add(clockSkew)):
		return logical.ErrorResponse("key_creation_date %s is in the future", created.Format(time.RFC3339)), nil
	case !created.Add(keyLifetime).After(now):
		return logical.ErrorResponse("key_creation_date %s is 90 days or more ago: Cisco has locked this key; "+
			"refresh it in Cisco's dashboard and import the new one", created.Format(time.RFC3339)), nil
	}

	lock := locksutil.LockForKey(b.locks, name)
	lock.Lock()
	defer lock.Unlock()
	e, err := b.orgLocked(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return logical.ErrorResponse("no organization %q is configured: write config/%s first", name, name), nil
	}
	prev := e.key
	if prev == nil {
		prev = &keyState{}
	}
	oldID := prev.AccessKeyID
	if oldID == id {
		oldID = prev.OldAccessKeyID
	}
	next := &keyState{
		AccessKeyID:       id,
		SecretAccessKey:   secret,
		OldAccessKeyID:    oldID,
		KeyCreationDate:   created,
		LastVaultRotation: now,
		Version:           prev.Version + 1,
	}
	if err := b.storeKey(ctx, req.Storage, name, next); err != nil {
		return nil, fmt.Errorf("storing the imported key: %w", err)
	}
	b.setOrg(name, &orgEntry{config: e.config, key: next})
	b.logger.Info("imported an S3 bucket key", "name", name, "version", next.Version, "access_key_id", id)
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
