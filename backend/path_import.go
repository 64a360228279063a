package backend

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

func pathImport(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "import/" + namePattern(),
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
			"verify": {
				Type:        framework.TypeBool,
				Default:     true,
				Description: "Check the key against AWS STS before storing it: a key that AWS rejects is refused, with which half is wrong. false skips the check. Ignored when key_check is false on the config. Not stored.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: forwardedWrite(b.withValidName(b.pathImportWrite), "import"),
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
	e, resp, err := b.configuredOrg(ctx, req.Storage, name)
	if e == nil {
		return resp, err
	}
	// The check runs before the name's lock: a rotation must not wait for
	// AWS, and a refused key leaves storage as it was.
	before := e.key
	var check *stscheck.Result
	if d.Get("verify").(bool) && !e.config.DisableKeyCheck {
		r := b.checkImportedKey(ctx, e.config, imported, now)
		if r.Outcome == stscheck.Invalid {
			return logical.ErrorResponse(importRefusedMessage(imported, r, e.key)), nil
		}
		check = &r
	}
	o, err := b.lockOrg(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	defer o.unlock()
	if e = o.e; e == nil {
		return notConfiguredResponse(name), nil
	}
	// A rotation that ran meanwhile may have replaced the imported key at
	// Cisco: storing it over the rotation's outcome would serve a dead key.
	if !bucketkey.SameHistory(before, e.key) {
		return errorStatus(http.StatusConflict, fmt.Sprintf("the key of %q changed while this import ran "+
			"(a rotation, a recovery or another import); nothing was stored. Read creds/%s, and import again only if Cisco's "+
			"dashboard still shows the key you imported", name, name))
	}
	next, _, err := o.stepAt(ctx, bucketkey.Imported{Key: imported, Check: check}, bucketkey.OriginImport, now)
	if err != nil {
		return nil, fmt.Errorf("storing the imported key: %w", err)
	}
	// Importing the very key that a stale mark is on keeps the mark.
	keptStale := next.Stale()
	reimported := e.key != nil && next.Version() == e.key.Version()
	resp = keyResponse(next)
	switch {
	case check == nil:
		resp.AddWarning("the key was stored without a check against AWS STS; check it with: vault write -f " + cliPath(req.MountPoint, "verify/"+name))
	case check.Outcome == stscheck.Unknown:
		resp.AddWarning("the key was stored, but AWS STS could not check it (" + check.Reason + "); check it later with: vault write -f " + cliPath(req.MountPoint, "verify/"+name))
	}
	if reimported {
		resp.AddWarning(fmt.Sprintf("this key is already served (version %d): no new version was stored", next.Version()))
	}
	if keptStale {
		resp.AddWarning("this is the key that a rotation with an unknown outcome may have replaced, and no check showed that it works: " +
			"it stays marked stale, and the recovery checks it (with key_check on) and rotates if it does not work")
	}
	return resp, nil
}

const pathImportHelpSyn = "Store a key that was refreshed in Cisco's dashboard."

const pathImportHelpDesc = `
Cisco's API can rotate an organization's key only after its first rotation
was done once in Cisco's dashboard. Import the key that the dashboard showed,
so that Vault serves it without rotating again. The key is stored as a new
version, and its 90 days count from key_creation_date.

Unless verify=false or the config's key_check=false, the key is first
checked against AWS STS GetCallerIdentity. A key that AWS rejects is
refused with a 400 that names the wrong half, and nothing is stored. A
check that gets no answer stores the key with a warning. A key created in
the last 10 minutes that AWS does not know yet is checked again for about
15 seconds, since AWS takes some seconds to accept a new key.

Importing the served key again (the same id, secret and creation date)
stores no new version.

An import during which a rotation or another import changed the key is
refused with a 409, and nothing is stored: the rotation may have replaced
the imported key at Cisco.

Example:

  $ vault write cisco-s3/import/acme access_key_id=AKIA... \
      secret_access_key=... key_creation_date=2025-03-12T22:00:00
`
