package backend

import (
	"context"
	"strconv"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathStatus(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "status/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "read",
			OperationSuffix: "status",
		},
		Callbacks: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.pathStatusRead,
		},
		HelpSynopsis:    pathStatusHelpSyn,
		HelpDescription: pathStatusHelpDesc,
	}}
}

func (b *backend) pathStatusRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	b.refillDropped(ctx, req.Storage)
	now := b.now()
	rows := b.fleet(now)
	unreadable, reasons := b.unreadableOrgs()
	if unreadable == nil {
		unreadable = []string{} // JSON [], not null
	}
	// Every value is a string or a list of strings, which Vault's table
	// format prints as they are.
	data := make(map[string]interface{}, len(rows)+len(unreadable)+2)
	names := make([]string, 0, len(rows))
	for _, st := range rows {
		names = append(names, st.name)
		data[configPrefix+st.name] = st.line(now)
	}
	for _, name := range unreadable {
		data[configPrefix+name] = "unreadable=" + strconv.Quote(reasons[name])
	}
	data["organizations"] = names
	data["unreadable"] = unreadable
	return &logical.Response{Data: data}, nil
}

const pathStatusHelpSyn = "Every organization's key state and lockout, most urgent first."

const pathStatusHelpDesc = `
One answer for the whole mount, from memory, with no secrets. Every value is
a string or a list of strings, so that the table format prints it as it is:

  config/<name>   One line per organization of field=value pairs, with the
                  fields of config/<name> reads: key_state, access_key_id,
                  expires_at (Cisco's 90-day lockout), seconds_to_lockout
                  (negative once passed), next_vault_rotation,
                  graceful_rotation_at (a pending graceful rotation),
                  consecutive_failures, last_rotation_error and
                  last_rotation_error_time, disable_automated_rotation,
                  key_check_result, key_verified_at and key_verify_error
                  (the last check of the key against AWS STS). Empty fields
                  are left out; a value with a space, a quote or "=" is
                  quoted as a Go string. A stored entry that cannot be
                  decoded reads unreadable="<reason>": delete config/<name>
                  and write it again.
  organizations   The names, most urgent first: a rejected key, then a stale
                  one, then the soonest lockout, then no key yet.
  unreadable      The names whose stored entry cannot be decoded.

Example:

  $ vault read cisco-s3/status
  $ vault read -format=json cisco-s3/status
`
