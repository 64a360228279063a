package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const (
	configPrefix = "config/"

	providerUmbrella     = "umbrella"
	providerSecureAccess = "secure_access"
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
	// STSURL overrides where keys are checked; empty means AWS STS of the
	// bucket's region.
	STSURL string `json:"sts_url,omitempty"`
	// DisableKeyCheck turns the key checks off (the key_check field is its
	// negation), so that a config stored before they existed has them on.
	DisableKeyCheck bool `json:"disable_key_check,omitempty"`
	// KeyCheckInterval is how often the served key is checked; nil means
	// defaultKeyCheckInterval (so that a config stored before it existed
	// gets it), and 0 turns the scheduled checks off.
	KeyCheckInterval *time.Duration `json:"key_check_interval,omitempty"`
	// KeepRejectedKey turns the heal off (rotate_rejected_key is its
	// negation): a rejected key is reported, not rotated.
	KeepRejectedKey bool `json:"keep_rejected_key,omitempty"`

	// RotationPeriod is zero when RotationSchedule is set.
	RotationPeriod           time.Duration `json:"rotation_period"`
	RotationSchedule         string        `json:"rotation_schedule,omitempty"`
	RotationWindow           time.Duration `json:"rotation_window,omitempty"`
	DisableAutomatedRotation bool          `json:"disable_automated_rotation"`

	// parsed is RotationSchedule, and bucket DataPath, parsed once by
	// derive: reads use them on every request.
	parsed *cron.SpecSchedule
	bucket *dataPath
}

// newConfig is a config with the defaults of a create.
func newConfig() *orgConfig { return &orgConfig{RotationPeriod: defaultRotationPeriod} }

// String and GoString keep the secret out of any %v, %+v or %#v, so a log
// line or a panic that prints a config cannot leak it.
func (c orgConfig) String() string {
	return fmt.Sprintf("orgConfig{provider: %s, client_id: %s, client_secret: <redacted>, org_id: %s}", c.Provider, c.ClientID, c.OrgID)
}

func (c orgConfig) GoString() string { return c.String() }

// schedule returns the parsed rotation schedule, nil with a period.
func (c *orgConfig) schedule() *cron.SpecSchedule { return c.parsed }

// derive computes the parsed fields, on load and after a write. A stored
// value that no longer parses leaves its field nil: an unparsable schedule
// falls back to the 89-day limit, an unparsable data path shows no bucket.
func (c *orgConfig) derive() {
	c.parsed, c.bucket = nil, nil
	if c.RotationSchedule != "" {
		c.parsed, _ = rotation.DefaultScheduler.Parse(c.RotationSchedule)
	}
	if c.DataPath != "" {
		if dp, err := parseDataPath(c.DataPath); err == nil {
			c.bucket = &dp
		}
	}
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

func (c *orgConfig) settings() cisco.Settings {
	return cisco.Settings{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		OrgID:        c.OrgID,
		APIURL:       c.apiURL(),
		TokenURL:     c.tokenURL(),
	}
}

// stsURL is where this organization's key is checked.
func (c *orgConfig) stsURL() string {
	return stscheck.Endpoint(c.STSURL, c.stsRegion())
}

// stsRegion is the bucket's region, which signs key checks; empty when
// data_path is not set.
func (c *orgConfig) stsRegion() string {
	if c.bucket == nil {
		return ""
	}
	return c.bucket.Region
}

const (
	// defaultKeyCheckInterval is how often a served key is checked when
	// the config does not say.
	defaultKeyCheckInterval = time.Hour
	minKeyCheckInterval     = time.Minute
)

// checkInterval is how often the served key is checked on a schedule; 0
// when scheduled checks, or all checks, are off.
func (c *orgConfig) checkInterval() time.Duration {
	switch {
	case c.DisableKeyCheck:
		return 0
	case c.KeyCheckInterval == nil:
		return defaultKeyCheckInterval
	}
	return *c.KeyCheckInterval
}

// heals reports whether a rejected key is rotated.
func (c *orgConfig) heals() bool { return !c.KeepRejectedKey && !c.DisableKeyCheck }

// apiKey names the Cisco API key, the unit of Cisco's rate limits.
func (c *orgConfig) apiKey() string { return c.tokenURL() + "|" + c.ClientID }

// getConfig reads an organization's config, (nil, nil) when none.
func getConfig(ctx context.Context, s logical.Storage, name string) (*orgConfig, error) {
	var cfg orgConfig
	ok, err := getJSON(ctx, s, configPrefix+name, &cfg)
	if err != nil || !ok {
		return nil, err
	}
	cfg.derive()
	return &cfg, nil
}

// listConfigs lists the configured names.
func listConfigs(ctx context.Context, s logical.Storage) ([]string, error) {
	return s.List(ctx, configPrefix)
}
