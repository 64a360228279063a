package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "creds/" + namePattern(),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": nameField(),
		},
		// Callbacks rather than Operations: for Operations the framework
		// asks Vault for the replication state on every request, a gRPC
		// round trip as costly as a storage read. A read needs no forwarding.
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.withValidName(b.pathCredsRead),
		},
		HelpSynopsis:    pathCredsHelpSyn,
		HelpDescription: pathCredsHelpDesc,
	}}
}

// credsFields is how many fields a creds read answers at most.
const credsFields = 24

// pathCredsRead answers from memory: no storage call on the hot path.
func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	// Until the load has settled the WAL, a cached key may be dead.
	e, resp, err := b.configuredOrg(ctx, req.Storage, name)
	if e == nil {
		return resp, err
	}
	k := e.key
	if !k.HasKey() {
		return noKeyResponse(req.MountPoint, name), nil
	}
	now := b.now()
	// Sized for every field of the answer: growing the map cost a
	// quarter of the read.
	data := make(map[string]interface{}, credsFields)
	data["secret_access_key"] = k.SecretAccessKey()
	data["old_access_key_id"] = k.OldAccessKeyID()
	data["expires_at"] = formatTime(k.ExpiresAt())
	data["ttl"] = int64(credsTTL(e, now) / time.Second)
	addKeyFields(data, e, now)
	addRotationFields(data, e.config, now)
	addDataPathFields(data, e.config)
	resp = &logical.Response{Data: data}
	addWarnings(resp, req.MountPoint, name, e, now)
	return resp, nil
}

const pathCredsHelpSyn = "Read the current S3 bucket key pair of an organization."

const pathCredsHelpDesc = `
Returns the key pair that Vault rotated or imported last, the bucket fields
derived from data_path, and the rotation timing. There is no lease: ttl is the
number of seconds until the next rotation is due, at most 50 and never 0, and
rotation_period is always present, so consumers (Vault Agent,
consul-template) re-read at ttl + 1 s, within 51 s of any key change. ttl is
1 while a rotation is due or a graceful one is pending. key_state is "stale"
when a rotation's outcome is unknown, and "rejected" when AWS rejects the
served key since a minute or more.

Example:

  $ vault read cisco-s3/creds/acme
`
