package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: configPrefix + namePattern(),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "configuration",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the organization's configuration, for example acme-umbrella: " + nameRule + ".",
					Required:    true,
				},
				"provider": {
					Type:          framework.TypeString,
					Description:   `Cisco product: "umbrella" or "secure_access". Required on create; picks the default api_url and token_url.`,
					AllowedValues: []interface{}{providerUmbrella, providerSecureAccess},
				},
				"client_id": {
					Type:        framework.TypeString,
					Description: "Cisco API key with the admin.iam:write scope. Required on create.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Client ID",
					},
				},
				"client_secret": {
					Type:        framework.TypeString,
					Description: "Cisco API key secret. Required on create. Write-only: never returned.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name:      "Client secret",
						Sensitive: true,
					},
				},
				"org_id": {
					Type:        framework.TypeString,
					Description: "Cisco organization ID, sent as X-Umbrella-OrgId on the token request for multi-org and MSP consoles. Empty (the default) sends no header.",
				},
				"api_url": {
					Type:        framework.TypeString,
					Description: "Override of the admin API base URL. Empty (the default) uses the provider's: https://api.umbrella.com/admin/v2 or https://api.sse.cisco.com/admin/v2. Must be https; http only for loopback hosts.",
				},
				"token_url": {
					Type:        framework.TypeString,
					Description: "Override of the OAuth2 token URL. Empty (the default) uses the provider's: https://api.umbrella.com/auth/v2/token or https://api.sse.cisco.com/auth/v2/token. Must be https; http only for loopback hosts.",
				},
				"data_path": {
					Type:        framework.TypeString,
					Description: `The bucket's "Data Path" shown by Cisco, e.g. s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567. Optional; bucket, region, prefix and bucket_arn are derived from it. Empty removes it.`,
				},
				"key_check": {
					Type:        framework.TypeBool,
					Description: "Check keys against AWS STS GetCallerIdentity: on import, after every rotation, and before a stale key is rotated again. Default true; false for a Vault that cannot reach AWS STS over HTTPS.",
				},
				"key_check_interval": {
					Type:        framework.TypeDurationSecond,
					Description: "How often the served key is checked against AWS STS on a schedule, to find a key that died outside Vault (a refresh in Cisco's dashboard). Default 1h (3600 s); at least 1m; 0 turns the scheduled checks off. Each check is one STS call. Ignored when key_check is false.",
				},
				"rotate_rejected_key": {
					Type:        framework.TypeBool,
					Description: "Rotate, at the next tick, a served key that AWS STS accepted before and now rejects twice a minute apart (the heal). Default true; false only reports it (key_state rejected, a warning, the metric and the alert).",
				},
				"force": {
					Type:        framework.TypeBool,
					Description: "Store a config whose Cisco organization (token URL, client_id and org_id, or data_path) is already configured under another name, for a migration. Default false. Not stored.",
				},
				"sts_url": {
					Type:        framework.TypeString,
					Description: "Override of the AWS STS endpoint that checks keys. Empty (the default) uses https://sts.<region>.amazonaws.com for the region of data_path, else https://sts.amazonaws.com. Must be https; http only for loopback hosts.",
				},
				"rotation_period": {
					Type:        framework.TypeDurationSecond,
					Description: "Rotate when the key is this old. Default 60 days (5184000 s); at least 1 minute and at most 89 days, a day before Cisco's 90-day lockout. Mutually exclusive with rotation_schedule; 0 restores the default.",
				},
				"rotation_schedule": {
					Type:        framework.TypeString,
					Description: `Rotate on this 5-field cron schedule in UTC, e.g. "0 3 1 * *". Mutually exclusive with rotation_period; runs may be at most 89 days apart. Empty (the default) uses rotation_period.`,
				},
				"rotation_window": {
					Type:        framework.TypeDurationSecond,
					Description: "With rotation_schedule only: a rotation that cannot start within this long after its scheduled time waits for the next one. At least 1 hour; 0 (the default) means no window.",
				},
				"disable_automated_rotation": {
					Type:        framework.TypeBool,
					Description: "Rotate only on request. Default false. Deadline warnings still apply.",
				},
				"verify_connection": {
					Type:        framework.TypeBool,
					Default:     true,
					Description: "On create, and when client_id, client_secret, token_url or org_id change, fetch a token to check the credentials before storing them (no rotation). false skips the check, for offline setup. Not stored.",
				},
			},
			ExistenceCheck: b.pathConfigExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: b.acceptReadBack(forwardedWrite(b.withValidName(b.pathConfigWrite), "configure")),
				logical.UpdateOperation: b.acceptReadBack(forwardedWrite(b.withValidName(b.pathConfigWrite), "configure")),
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.withValidName(b.pathConfigRead),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
				},
				logical.DeleteOperation: forwardedWrite(b.withValidName(b.pathConfigDelete), "delete"),
			},
			HelpSynopsis:    pathConfigHelpSyn,
			HelpDescription: pathConfigHelpDesc,
		},
		{
			Pattern: configPrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "configurations",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback:     b.pathConfigList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"},
				},
			},
			HelpSynopsis:    pathConfigListHelpSyn,
			HelpDescription: pathConfigListHelpDesc,
		},
	}
}

func (b *backend) pathConfigExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name := d.Get("name").(string)
	// A refused name does not exist; its write gets the handler's 400.
	// An error here would be a 500 that Vault logs at ERROR.
	if resp, err := b.invalidNameResponse(ctx, req.Storage, name); resp != nil || err != nil {
		return false, err
	}
	e, err := b.org(ctx, req.Storage, name)
	return e != nil, err
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	o, err := b.lockOrg(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	defer o.unlock()
	prev := o.e
	cfg := newConfig()
	var key *keyState
	if prev != nil {
		copied := *prev.config
		cfg, key = &copied, prev.key
	}
	if err := applyConfigFields(cfg, d, prev == nil, b.now()); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if other := b.sharingCiscoOrg(name, cfg); other != "" && !d.Get("force").(bool) {
		return logical.ErrorResponse("the Cisco organization of this config is already configured as config/%s "+
			"(the same token URL, client_id and org_id, or the same data_path): two configs for one organization rotate "+
			"each other's key out. Use config/%s, or write force=true for a migration and delete one of them after it", other, other), nil
	}
	var checked *cisco.Client
	if d.Get("verify_connection").(bool) && (prev == nil || credentialsChanged(prev.config, cfg)) {
		checked = b.newClient(cfg)
		if err := b.verifyCredentials(ctx, cfg, checked); err != nil {
			return logical.ErrorResponse(credentialCheckMessage(cfg, err)), nil
		}
	}
	if err := o.putConfig(ctx, cfg); err != nil {
		// The cache stays: it may hold what storage refused before, such
		// as the stale mark of a lost key, and dropping it would serve that
		// dead key as current. The operator retries the failed write.
		return nil, err
	}
	// New credentials, URLs or org_id may fix what failed: retry at the
	// next tick, not after the backoff.
	if prev != nil && prev.config.settings() != cfg.settings() {
		next, _, err := o.step(ctx, bucketkey.SettingsChanged{}, "")
		if err != nil {
			b.logger.Warn("could not store the cleared retry backoff", "name", name, "error", err)
		}
		key = next
	}
	b.resetClient(name)
	if checked != nil {
		b.keepClient(name, checked) // its token serves the first rotation
	}
	o.set(&orgEntry{config: cfg, key: key})
	if other := b.sharingCiscoOrg(name, cfg); other != "" {
		resp := &logical.Response{}
		resp.AddWarning(sharedOrgMessage(other))
		return resp, nil
	}
	return nil, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	e, err := b.org(ctx, req.Storage, d.Get("name").(string))
	if err != nil || e == nil {
		return nil, err
	}
	now := b.now()
	resp := &logical.Response{Data: configData(e, now)}
	addWarnings(resp, req.MountPoint, d.Get("name").(string), e, now)
	if other := b.sharingCiscoOrg(d.Get("name").(string), e.config); other != "" {
		resp.AddWarning(sharedOrgMessage(other))
	}
	return resp, nil
}

// configData is what a config read shows of an organization.
func configData(e *orgEntry, now time.Time) map[string]interface{} {
	cfg := e.config
	data := map[string]interface{}{
		"provider":            cfg.Provider,
		"client_id":           cfg.ClientID,
		"org_id":              cfg.OrgID,
		"api_url":             cfg.apiURL(),
		"token_url":           cfg.tokenURL(),
		"data_path":           cfg.DataPath,
		"key_check":           !cfg.DisableKeyCheck,
		"sts_url":             cfg.stsURL(),
		"key_check_interval":  int64(cfg.checkInterval() / time.Second),
		"rotate_rejected_key": !cfg.KeepRejectedKey,
		"key_expires_at":      nil,
	}
	data["graceful_rotation_at"] = nil
	if e.key != nil {
		data["key_expires_at"] = formatTime(e.key.ExpiresAt())
		data["graceful_rotation_at"] = formatTime(e.key.GracefulAt())
	}
	addDataPathFields(data, cfg)
	addRotationFields(data, cfg, now)
	addKeyFields(data, e, now)
	addFailureFields(data, e.key)
	return data
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	// No read of the entry: an unreadable one must stay deletable.
	o, err := b.lockName(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	defer o.unlock()
	return nil, o.delete(ctx)
}

func (b *backend) pathConfigList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	names, err := listConfigs(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	// Names whose entry cannot be decoded say so in key_info.
	_, reasons := b.unreadableOrgs()
	info := make(map[string]interface{}, len(reasons))
	for _, name := range names {
		if reason, ok := reasons[name]; ok {
			info[name] = map[string]interface{}{"unreadable": reason}
		}
	}
	return logical.ListResponseWithInfo(names, info), nil
}

const pathConfigHelpSyn = "Configure the Cisco API key and rotation settings of one organization."

const pathConfigHelpDesc = `
Each name is one Cisco Umbrella or Cisco Secure Access organization. The
engine uses its API key (client_id, client_secret; scope admin.iam:write) to
call Cisco's "Refresh S3 Bucket Key" API. An update changes only the fields it
sends. Reads never return client_secret, and add the derived bucket fields and
the rotation status.

Example:

  $ vault write cisco-s3/config/acme provider=umbrella \
      client_id=... client_secret=... \
      data_path=s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567 \
      rotation_period=60d
`

const pathConfigListHelpSyn = "List the configured organizations."

const pathConfigListHelpDesc = `
Lists the names under config/. The list holds names only, never credentials.
`
