package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/robfig/cron/v3"
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
