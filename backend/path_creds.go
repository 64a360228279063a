package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const keyPrefix = "key/"

// keyState is an organization's current key pair and rotation status. It
// is stored as one entry, so a read can never mix two versions.
type keyState struct {
	AccessKeyID       string    `json:"access_key_id,omitempty"`
	SecretAccessKey   string    `json:"secret_access_key,omitempty"`
	OldAccessKeyID    string    `json:"old_access_key_id,omitempty"`
	KeyCreationDate   time.Time `json:"key_creation_date"`
	LastVaultRotation time.Time `json:"last_vault_rotation"`
	// Version grows by one with every stored key.
	Version int `json:"version"`

	// Stale means a rotation's outcome is unknown: Cisco may have replaced
	// the served key already.
	Stale               bool      `json:"stale,omitempty"`
	LastError           string    `json:"last_rotation_error,omitempty"`
	LastErrorTime       time.Time `json:"last_rotation_error_time"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	// RetryAt is when the scheduler retries after a failure; zero when no
	// retry is pending.
	RetryAt time.Time `json:"retry_at"`
}

// String and GoString keep the secret out of any %v, %+v or %#v.
func (k keyState) String() string {
	return fmt.Sprintf("keyState{access_key_id: %s, secret_access_key: <redacted>, version: %d, state: %s}", k.AccessKeyID, k.Version, k.state())
}

func (k keyState) GoString() string { return k.String() }

func (k *keyState) hasKey() bool { return k != nil && k.AccessKeyID != "" }

func (k *keyState) state() string {
	switch {
	case k.Stale:
		return "stale"
	case k.hasKey():
		return "current"
	}
	return "none"
}

// issuedAt is when the key's 90 days started: the earlier of Cisco's
// creation date and Vault's rotation, so an imported key counts from its
// true creation.
func (k *keyState) issuedAt() time.Time {
	switch {
	case k.KeyCreationDate.IsZero():
		return k.LastVaultRotation
	case k.LastVaultRotation.IsZero() || k.KeyCreationDate.Before(k.LastVaultRotation):
		return k.KeyCreationDate
	}
	return k.LastVaultRotation
}

// expiresAt is Cisco's lockout of this key.
func (k *keyState) expiresAt() time.Time {
	if !k.hasKey() {
		return time.Time{}
	}
	return k.issuedAt().Add(keyLifetime)
}

func pathCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "credentials",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the organization.",
				Required:    true,
			},
		},
		// Callbacks rather than Operations: for Operations the framework
		// asks Vault for the replication state on every request, a gRPC
		// round trip as costly as a storage read. A read needs no forwarding.
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.pathCredsRead,
		},
		HelpSynopsis:    pathCredsHelpSyn,
		HelpDescription: pathCredsHelpDesc,
	}}
}

// pathCredsRead answers from memory: no storage call on the hot path.
func (b *backend) pathCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e, err := b.org(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return logical.ErrorResponse("no organization %q is configured: write config/%s first", name, name), nil
	}
	k := e.key
	if !k.hasKey() {
		return logical.ErrorResponse("no key is stored for %q yet: run \"vault write -f <mount>/rotate/%s\" to rotate now, "+
			"or store the key refreshed in Cisco's dashboard with \"vault write <mount>/import/%s access_key_id=... "+
			"secret_access_key=... key_creation_date=...\"", name, name, name), nil
	}
	now := b.now()
	data := map[string]interface{}{
		"access_key_id":       k.AccessKeyID,
		"secret_access_key":   k.SecretAccessKey,
		"old_access_key_id":   k.OldAccessKeyID,
		"key_creation_date":   formatTime(k.KeyCreationDate),
		"last_vault_rotation": formatTime(k.LastVaultRotation),
		"expires_at":          formatTime(k.expiresAt()),
		"version":             k.Version,
		"key_state":           k.state(),
		"ttl":                 int64(credsTTL(e, now) / time.Second),
	}
	addRotationFields(data, e.config, now)
	if next, ok := nextRotation(e.config, k, now); ok {
		data["next_vault_rotation"] = formatTime(next)
	} else {
		data["next_vault_rotation"] = nil
	}
	addDataPathFields(data, e.config)
	resp := &logical.Response{Data: data}
	addWarnings(resp, e, now)
	return resp, nil
}

// manualOnlyTTL is the re-read interval offered to consumers when keys
// change only on request.
const manualOnlyTTL = time.Hour

// credsTTL is how long a consumer may keep the key: until the next
// rotation, 0 when it is overdue.
func credsTTL(e *orgEntry, now time.Time) time.Duration {
	next, ok := nextRotation(e.config, e.key, now)
	if !ok {
		return manualOnlyTTL
	}
	if d := next.Sub(now).Truncate(time.Second); d > 0 {
		return d
	}
	return 0
}

func getKeyState(ctx context.Context, s logical.Storage, name string) (*keyState, error) {
	var k keyState
	ok, err := getJSON(ctx, s, keyPrefix+name, &k)
	if err != nil || !ok {
		return nil, err
	}
	return &k, nil
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
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v interface{}) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

const pathCredsHelpSyn = "Read the current S3 bucket key pair of an organization."

const pathCredsHelpDesc = `
Returns the key pair that Vault rotated or imported last, the bucket fields
derived from data_path, and the rotation timing. There is no lease: ttl is the
number of seconds until the next rotation is due (0 when overdue), and
rotation_period is always present, so Vault Agent re-reads right after each
rotation. key_state is "stale" when a rotation's outcome is unknown.

Example:

  $ vault read cisco-s3/creds/acme
`
