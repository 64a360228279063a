package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"
)

const (
	configPrefix = "config/"

	providerUmbrella     = "umbrella"
	providerSecureAccess = "secure_access"

	// keyLifetime is Cisco's lockout: a key older than this stops working.
	keyLifetime           = 90 * 24 * time.Hour
	defaultRotationPeriod = 60 * 24 * time.Hour
	minRotationPeriod     = time.Minute
	minRotationWindow     = time.Hour
	// maxRotationGap is the longest a schedule may leave a key unrotated.
	maxRotationGap = 89 * 24 * time.Hour
)

var providerURLs = map[string]struct{ api, token string }{
	providerUmbrella:     {"https://api.umbrella.com/admin/v2", "https://api.umbrella.com/auth/v2/token"},
	providerSecureAccess: {"https://api.sse.cisco.com/admin/v2", "https://api.sse.cisco.com/auth/v2/token"},
}

// orgConfig is one organization's stored configuration.
type orgConfig struct {
	Provider     string `json:"provider"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	OrgID        string `json:"org_id,omitempty"`
	// APIURL and TokenURL are overrides; empty means the provider's default.
	APIURL   string `json:"api_url,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
	DataPath string `json:"data_path,omitempty"`

	// RotationPeriod is zero when RotationSchedule is set.
	RotationPeriod           time.Duration `json:"rotation_period"`
	RotationSchedule         string        `json:"rotation_schedule,omitempty"`
	RotationWindow           time.Duration `json:"rotation_window,omitempty"`
	DisableAutomatedRotation bool          `json:"disable_automated_rotation"`

	// parsed is RotationSchedule, and bucket DataPath, parsed once: reads
	// use them on every request.
	parsed *cron.SpecSchedule
	bucket *dataPath
}

// String and GoString keep the secret out of any %v, %+v or %#v, so a log
// line or a panic that prints a config cannot leak it.
func (c orgConfig) String() string {
	return fmt.Sprintf("orgConfig{provider: %s, client_id: %s, client_secret: <redacted>, org_id: %s}", c.Provider, c.ClientID, c.OrgID)
}

func (c orgConfig) GoString() string { return c.String() }

// schedule returns the parsed rotation schedule, nil with a period.
func (c *orgConfig) schedule() *cron.SpecSchedule {
	if c.RotationSchedule == "" {
		return nil
	}
	return c.parsed
}

func (c *orgConfig) apiURL() string {
	if c.APIURL != "" {
		return c.APIURL
	}
	return providerURLs[c.Provider].api
}

func (c *orgConfig) tokenURL() string {
	if c.TokenURL != "" {
		return c.TokenURL
	}
	return providerURLs[c.Provider].token
}

func (c *orgConfig) settings() ciscoSettings {
	return ciscoSettings{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		OrgID:        c.OrgID,
		APIURL:       c.apiURL(),
		TokenURL:     c.tokenURL(),
	}
}

// apiKey names the Cisco API key, the unit of Cisco's rate limits.
func (c *orgConfig) apiKey() string { return c.tokenURL() + "|" + c.ClientID }

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: configPrefix + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "configuration",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeString,
					Description: "Name of the organization's configuration, for example acme-umbrella.",
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
				"rotation_period": {
					Type:        framework.TypeDurationSecond,
					Description: "Rotate when the key is this old. Default 60 days (5184000 s); at least 1 minute and below Cisco's 90-day lockout. Mutually exclusive with rotation_schedule; 0 restores the default.",
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
			},
			ExistenceCheck: b.pathConfigExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathConfigWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathConfigWrite,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure"},
				},
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathConfigRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathConfigDelete,
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
					DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete"},
				},
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

const operationPrefix = "cisco-s3"

func (b *backend) pathConfigExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	e, err := b.org(ctx, req.Storage, d.Get("name").(string))
	return e != nil, err
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	name := d.Get("name").(string)
	lock := locksutil.LockForKey(b.locks, name)
	lock.Lock()
	defer lock.Unlock()

	prev, err := b.orgLocked(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	cfg := &orgConfig{RotationPeriod: defaultRotationPeriod}
	if prev != nil {
		copied := *prev.config
		cfg = &copied
	}
	if err := applyConfigFields(cfg, d, prev == nil); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err := putJSON(ctx, req.Storage, configPrefix+name, cfg); err != nil {
		return nil, fmt.Errorf("storing config: %w", err)
	}
	var key *keyState
	if prev != nil {
		key = prev.key
	}
	b.resetClient(name)
	b.setOrg(name, &orgEntry{config: cfg, key: key})
	return nil, nil
}

// applyConfigFields copies the fields the request sent onto cfg and
// validates the result. Its errors are caller mistakes.
func applyConfigFields(cfg *orgConfig, d *framework.FieldData, create bool) error {
	str := func(field string, dst *string) {
		if v, ok := d.GetOk(field); ok {
			*dst = strings.TrimSpace(v.(string))
		}
	}
	str("provider", &cfg.Provider)
	str("client_id", &cfg.ClientID)
	if v, ok := d.GetOk("client_secret"); ok {
		cfg.ClientSecret = v.(string)
	}
	str("org_id", &cfg.OrgID)
	str("api_url", &cfg.APIURL)
	str("token_url", &cfg.TokenURL)
	str("data_path", &cfg.DataPath)

	if _, ok := providerURLs[cfg.Provider]; !ok {
		if create && cfg.Provider == "" {
			return errors.New(`provider is required: "umbrella" or "secure_access"`)
		}
		return fmt.Errorf(`provider must be "umbrella" or "secure_access", not %q`, truncate(cfg.Provider, 40))
	}
	if cfg.ClientID == "" {
		return errors.New("client_id is required: the Cisco API key with the admin.iam:write scope")
	}
	if cfg.ClientSecret == "" {
		return errors.New("client_secret is required: the Cisco API key secret")
	}
	if strings.ContainsAny(cfg.ClientID, ":\r\n") {
		return errors.New("client_id must not contain a colon or a line break")
	}
	if cfg.OrgID != "" && !orgIDPattern.MatchString(cfg.OrgID) {
		return errors.New("org_id must be Cisco's numeric organization ID, e.g. 1234567")
	}
	for field, u := range map[string]*string{"api_url": &cfg.APIURL, "token_url": &cfg.TokenURL} {
		if *u == "" {
			continue
		}
		clean, err := validateURL(*u)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		*u = clean
	}
	cfg.bucket = nil
	if cfg.DataPath != "" {
		dp, err := parseDataPath(cfg.DataPath)
		if err != nil {
			return err
		}
		cfg.DataPath = dp.String()
		cfg.bucket = &dp
	}
	return applyRotationFields(cfg, d)
}

var orgIDPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// validateURL accepts an absolute https URL, or http for a loopback host.
func validateURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", errors.New("must be an absolute URL such as https://api.umbrella.com/admin/v2")
	}
	if u.User != nil {
		return "", errors.New("must not carry credentials; set client_id and client_secret instead")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", errors.New("must not have a query or fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", errors.New("must use https; plain http is allowed only for loopback hosts (localhost, 127.0.0.1, ::1)")
		}
	default:
		return "", fmt.Errorf("must use https, not %q", truncate(u.Scheme, 20))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dataPath is the parsed "Data Path" of a Cisco-managed bucket.
type dataPath struct {
	Bucket, Region, Prefix string
}

func (p dataPath) String() string { return "s3://" + p.Bucket + "/" + p.Prefix }
func (p dataPath) ARN() string    { return "arn:aws:s3:::" + p.Bucket }

var (
	bucketPattern = regexp.MustCompile(`^cisco-managed-([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})$`)
	prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$`)
)

const dataPathShape = "data_path must look like s3://cisco-managed-<region>/<prefix>, " +
	"e.g. s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567 (the s3:// is optional)"

// parseDataPath reads Cisco's Data Path: [s3://]cisco-managed-<region>/<prefix>[/].
func parseDataPath(s string) (dataPath, error) {
	rest := strings.TrimPrefix(strings.TrimSpace(s), "s3://")
	bucket, prefix, ok := strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	m := bucketPattern.FindStringSubmatch(bucket)
	if !ok || m == nil || !prefixPattern.MatchString(prefix) || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
		return dataPath{}, errors.New(dataPathShape)
	}
	return dataPath{Bucket: bucket, Region: m[1], Prefix: prefix}, nil
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	name := d.Get("name").(string)
	e, err := b.org(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, nil
	}
	now := b.now()
	cfg := e.config
	data := map[string]interface{}{
		"provider":                   cfg.Provider,
		"client_id":                  cfg.ClientID,
		"org_id":                     cfg.OrgID,
		"api_url":                    cfg.apiURL(),
		"token_url":                  cfg.tokenURL(),
		"data_path":                  cfg.DataPath,
		"disable_automated_rotation": cfg.DisableAutomatedRotation,
	}
	addDataPathFields(data, cfg)
	addRotationFields(data, cfg, now)
	addStatusFields(data, e, now)
	resp := &logical.Response{Data: data}
	addWarnings(resp, e, now)
	return resp, nil
}

// addDataPathFields adds data_path and the bucket fields derived from it.
func addDataPathFields(data map[string]interface{}, cfg *orgConfig) {
	dp := cfg.bucket
	if dp == nil {
		return
	}
	data["data_path"] = cfg.DataPath
	data["bucket"] = dp.Bucket
	data["region"] = dp.Region
	data["prefix"] = dp.Prefix
	data["bucket_arn"] = dp.ARN()
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	name := d.Get("name").(string)
	lock := locksutil.LockForKey(b.locks, name)
	lock.Lock()
	defer lock.Unlock()

	// The key goes first: a failure then leaves a config without a key,
	// never a key without its config.
	if err := req.Storage.Delete(ctx, keyPrefix+name); err != nil {
		return nil, fmt.Errorf("deleting key: %w", err)
	}
	if err := req.Storage.Delete(ctx, configPrefix+name); err != nil {
		b.setOrgUnknown(name)
		return nil, fmt.Errorf("deleting config: %w", err)
	}
	b.resetClient(name)
	b.setOrg(name, nil)
	return nil, nil
}

// setOrgUnknown drops the cached organization so that the next access
// reads storage again, after a write that may have half-landed.
func (b *backend) setOrgUnknown(name string) {
	b.cacheMu.Lock()
	delete(b.cache, name)
	b.cacheGen++
	b.cacheMu.Unlock()
	b.sched.remove(name)
}

func (b *backend) pathConfigList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func getConfig(ctx context.Context, s logical.Storage, name string) (*orgConfig, error) {
	var cfg orgConfig
	ok, err := getJSON(ctx, s, configPrefix+name, &cfg)
	if err != nil || !ok {
		return nil, err
	}
	if cfg.RotationSchedule != "" {
		// Validated on write; an unparsable one falls back to the 89-day limit.
		cfg.parsed, _ = rotation.DefaultScheduler.Parse(cfg.RotationSchedule)
	}
	if dp, err := parseDataPath(cfg.DataPath); err == nil {
		cfg.bucket = &dp
	}
	return &cfg, nil
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

// applyRotationFields applies rotation_period, rotation_schedule,
// rotation_window and disable_automated_rotation. Period and schedule are
// exclusive: sending one clears the other.
func applyRotationFields(cfg *orgConfig, d *framework.FieldData) error {
	periodRaw, periodOK := d.GetOk("rotation_period")
	scheduleRaw, scheduleOK := d.GetOk("rotation_schedule")
	windowRaw, windowOK := d.GetOk("rotation_window")
	period := time.Duration(0)
	if periodOK {
		period = time.Duration(periodRaw.(int)) * time.Second
	}
	schedule := ""
	if scheduleOK {
		schedule = strings.TrimSpace(scheduleRaw.(string))
	}
	if period != 0 && schedule != "" {
		return errors.New("rotation_period and rotation_schedule are mutually exclusive: send one of them")
	}
	switch {
	case schedule != "":
		cfg.RotationSchedule = schedule
		cfg.RotationPeriod = 0
	case periodOK:
		if period == 0 {
			period = defaultRotationPeriod
		}
		cfg.RotationPeriod = period
		cfg.RotationSchedule = ""
		cfg.RotationWindow = 0
	case scheduleOK: // an empty schedule: back to the default period
		cfg.RotationSchedule = ""
		cfg.RotationWindow = 0
		cfg.RotationPeriod = defaultRotationPeriod
	}
	if windowOK {
		cfg.RotationWindow = time.Duration(windowRaw.(int)) * time.Second
	}
	if v, ok := d.GetOk("disable_automated_rotation"); ok {
		cfg.DisableAutomatedRotation = v.(bool)
	}

	if cfg.RotationSchedule == "" {
		if cfg.RotationWindow != 0 {
			return errors.New("rotation_window applies only with rotation_schedule")
		}
		if cfg.RotationPeriod == 0 {
			cfg.RotationPeriod = defaultRotationPeriod
		}
		return validateRotationPeriod(cfg.RotationPeriod)
	}
	if cfg.RotationWindow != 0 && cfg.RotationWindow < minRotationWindow {
		return errors.New("rotation_window must be at least 1h (3600 s), or 0 for no window")
	}
	if cfg.RotationWindow < 0 {
		return errors.New("rotation_window must not be negative")
	}
	sched, err := parseRotationSchedule(cfg.RotationSchedule)
	cfg.parsed = sched
	return err
}

func validateRotationPeriod(p time.Duration) error {
	switch {
	case p < minRotationPeriod:
		return errors.New("rotation_period must be at least 1m (60 s)")
	case p >= keyLifetime:
		return fmt.Errorf("rotation_period must be below 90d (7776000 s): Cisco locks the organization out of its bucket "+
			"when the key is 90 days old, so a key must be rotated before then; got %s", formatDays(p))
	}
	return nil
}

func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// addRotationFields adds the rotation settings to a read. rotation_period
// is always present, as seconds: consul-template honours ttl only with it.
func addRotationFields(data map[string]interface{}, cfg *orgConfig, now time.Time) {
	data["rotation_period"] = int64(effectivePeriod(cfg, now) / time.Second)
	data["disable_automated_rotation"] = cfg.DisableAutomatedRotation
	if cfg.RotationSchedule != "" {
		data["rotation_schedule"] = cfg.RotationSchedule
		data["rotation_window"] = int64(cfg.RotationWindow / time.Second)
	}
}

// addStatusFields adds the rotation status of an organization.
func addStatusFields(data map[string]interface{}, e *orgEntry, now time.Time) {
	k := e.key
	if k == nil {
		k = &keyState{}
	}
	data["key_state"] = k.state()
	data["version"] = k.Version
	data["access_key_id"] = k.AccessKeyID
	data["last_vault_rotation"] = formatTime(k.LastVaultRotation)
	data["key_creation_date"] = formatTime(k.KeyCreationDate)
	data["key_expires_at"] = formatTime(k.expiresAt())
	data["last_rotation_error"] = k.LastError
	data["last_rotation_error_time"] = formatTime(k.LastErrorTime)
	data["consecutive_failures"] = k.ConsecutiveFailures
	next, ok := nextRotation(e.config, k, now)
	if ok {
		data["next_vault_rotation"] = formatTime(next)
	} else {
		data["next_vault_rotation"] = nil
	}
}

// addWarnings warns of a stale key and of Cisco's approaching lockout.
func addWarnings(resp *logical.Response, e *orgEntry, now time.Time) {
	k := e.key
	if k == nil {
		return
	}
	if k.Stale {
		resp.AddWarning("the served key may be dead: a rotation's outcome is unknown (" + k.LastError +
			"); a new rotation is scheduled, or run: vault write -f <mount>/rotate/<name>")
	}
	if inDeadlineZone(k, now) {
		resp.AddWarning(deadlineMessage(k, now))
	}
}

// formatTime renders RFC 3339 in UTC, or nil for the zero time.
func formatTime(t time.Time) interface{} {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}
