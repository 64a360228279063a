package backend

import (
	"context"
	"time"

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
	orgs := make([]map[string]interface{}, 0, len(rows))
	for _, st := range rows {
		row := map[string]interface{}{
			"name":                       st.name,
			"key_state":                  st.keyState,
			"access_key_id":              st.accessKeyID,
			"expires_at":                 formatTime(st.expiresAt),
			"seconds_to_lockout":         nil,
			"next_vault_rotation":        formatTime(st.nextRotation),
			"consecutive_failures":       st.consecutiveFailures,
			"last_rotation_error":        st.lastError,
			"last_rotation_error_time":   formatTime(st.lastErrorTime),
			"disable_automated_rotation": st.automationDisabled,
			"key_verified_at":            formatTime(st.verifiedAt),
			"key_verify_error":           st.verifyError,
			"key_check_result":           string(st.checkResult),
			"graceful_rotation_at":       formatTime(st.gracefulAt),
		}
		if !st.expiresAt.IsZero() {
			row["seconds_to_lockout"] = int64(st.expiresAt.Sub(now) / time.Second)
		}
		orgs = append(orgs, row)
	}
	names, reasons := b.unreadableOrgs()
	unreadable := make([]map[string]interface{}, 0, len(names))
	for _, name := range names {
		unreadable = append(unreadable, map[string]interface{}{"name": name, "reason": reasons[name]})
	}
	return &logical.Response{Data: map[string]interface{}{
		"organizations": orgs,
		"unreadable":    unreadable,
	}}, nil
}

const pathStatusHelpSyn = "Every organization's key state and lockout, most urgent first."

const pathStatusHelpDesc = `
One answer for the whole mount, from memory: for each organization its
key_state, access_key_id, expires_at (Cisco's 90-day lockout) and
seconds_to_lockout (negative once passed), next_vault_rotation,
consecutive_failures, last_rotation_error and its time,
disable_automated_rotation, graceful_rotation_at (a pending graceful
rotation), and key_check_result, key_verified_at and
key_verify_error (the last check of the key against AWS STS). Stale keys come first, then the soonest lockout,
then organizations with no key yet. "unreadable" lists stored entries that
cannot be decoded: delete config/<name> and write it again. No secrets.

Example:

  $ vault read -format=json cisco-s3/status
`
