package backend

// Writing a config: the request's fields applied onto a config, and their
// validation.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
)

// applyConfigFields copies the fields the request sent onto cfg, validates
// the result and derives its parsed fields. Its errors are caller mistakes.
func applyConfigFields(cfg *orgConfig, d *framework.FieldData, create bool, now time.Time) error {
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
	str("sts_url", &cfg.STSURL)
	if v, ok := d.GetOk("key_check"); ok {
		cfg.DisableKeyCheck = !v.(bool)
	}
	if v, ok := d.GetOk("key_check_interval"); ok {
		iv := time.Duration(v.(int)) * time.Second
		if iv != 0 && iv < minKeyCheckInterval {
			return errors.New("key_check_interval must be at least 1m (60 s), or 0 to turn the scheduled checks off")
		}
		cfg.KeyCheckInterval = &iv
	}
	if v, ok := d.GetOk("rotate_rejected_key"); ok {
		cfg.KeepRejectedKey = !v.(bool)
	}

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
	for field, u := range map[string]*string{"api_url": &cfg.APIURL, "token_url": &cfg.TokenURL, "sts_url": &cfg.STSURL} {
		if *u == "" {
			continue
		}
		clean, err := validateURL(*u)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		*u = clean
	}
	if cfg.DataPath != "" {
		dp, err := parseDataPath(cfg.DataPath)
		if err != nil {
			return err
		}
		cfg.DataPath = dp.String()
	}
	if err := applyRotationFields(cfg, d, now); err != nil {
		return err
	}
	cfg.derive()
	return nil
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

// applyRotationFields applies rotation_period, rotation_schedule,
// rotation_window and disable_automated_rotation. Period and schedule are
// exclusive: sending one clears the other.
func applyRotationFields(cfg *orgConfig, d *framework.FieldData, now time.Time) error {
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
	_, err := parseRotationSchedule(cfg.RotationSchedule, now)
	return err
}

func validateRotationPeriod(p time.Duration) error {
	switch {
	case p < minRotationPeriod:
		return errors.New("rotation_period must be at least 1m (60 s)")
	case p > maxRotationGap:
		return fmt.Errorf("rotation_period must be at most 89d (7689600 s): Cisco locks the organization out of its bucket "+
			"when the key is 90 days old, and the plugin rotates by day 89 at the latest to leave a day for retries; got %s", formatDays(p))
	}
	return nil
}

func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
