package backend

// What reads show: the status and warning fields that creds and config
// reads share, and the answers that describe a key without its secret.

import (
	"fmt"
	"strings"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"

	"github.com/hashicorp/vault/sdk/logical"
)

// deadlineWarning is how long before Cisco's lockout reads warn.
const deadlineWarning = 14 * 24 * time.Hour

// credsRereadInterval caps the ttl that creds reads report. Vault Agent
// re-reads a lease-less secret with rotation_period ttl + 1 seconds after
// reading it, so every consumer holds a new key at most this long (plus a
// second and its render) after any change: a manual, scheduled or recovery
// rotation, a retry, an import. 50 s keeps that within the promised 65 s
// with room for the render and a loaded machine; the cost is one read per
// consumer per interval, answered from memory.
const credsRereadInterval = 50 * time.Second

// overdueReread is how long after a due rotation consumers re-read every
// two seconds: the tick, about once a minute, rotates within it.
const overdueReread = 2 * time.Minute

// credsTTL is how long a consumer may keep the key before reading again:
// until the next scheduled rotation, at most credsRereadInterval, and
// never 0, which would make Vault Agent re-read every second. Once a
// rotation is due and until it lands, 1 s: Cisco kills the old key at the
// rotation, so consumers then pick up the new key within 2 s, not 50.
func credsTTL(e *orgEntry, now time.Time) time.Duration {
	if e.key != nil && !e.key.GracefulAt().IsZero() && now.Before(e.key.GracefulAt().Add(overdueReread)) {
		// A graceful rotation is pending: consumers re-read every 2 s
		// until it lands (or, if it keeps failing, for as long as a due
		// rotation would have them).
		return time.Second
	}
	ttl := credsRereadInterval
	if next, ok := bucketkey.NextRotation(e.key, e.config.facts(), now); ok {
		switch d := next.Sub(now); {
		case d > 0 && d < ttl:
			ttl = d.Truncate(time.Second)
		case d <= 0 && -d < overdueReread:
			ttl = time.Second
		}
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	return ttl
}

// addKeyFields adds the served key's id, version, dates and state, and the
// next rotation, which creds and config reads both show.
func addKeyFields(data map[string]interface{}, e *orgEntry, now time.Time) {
	k := e.key
	if k == nil {
		k = &keyState{}
	}
	data["access_key_id"] = k.AccessKeyID()
	data["version"] = k.Version()
	data["key_state"] = k.Shown()
	data["key_creation_date"] = formatTime(k.KeyCreationDate())
	data["last_vault_rotation"] = formatTime(k.LastVaultRotation())
	data["key_verified_at"] = formatTime(k.VerifiedAt())
	data["key_verify_error"] = k.VerifyError()
	data["key_check_result"] = string(k.CheckResult())
	data["next_vault_rotation"] = nil
	if next, ok := bucketkey.NextRotation(k, e.config.facts(), now); ok {
		data["next_vault_rotation"] = formatTime(next)
	}
}

// addFailureFields adds the last failure and the failure count.
func addFailureFields(data map[string]interface{}, k *keyState) {
	if k == nil {
		k = &keyState{}
	}
	data["last_rotation_error"] = k.LastError()
	data["last_rotation_error_time"] = formatTime(k.LastErrorTime())
	data["consecutive_failures"] = k.ConsecutiveFailures()
	data["stale_cleared"] = k.StaleCleared()
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

// addWarnings warns of a stale key and of Cisco's approaching lockout.
// Their commands name the mount and the organization.
func addWarnings(resp *logical.Response, mount, name string, e *orgEntry, now time.Time) {
	k := e.key
	if k == nil {
		return
	}
	if k.Stale() {
		resp.AddWarning(fmt.Sprintf("the served key may be dead: a rotation's outcome is unknown (%s); "+
			"the plugin rotates again at %s, or run now: vault write -f %s",
			k.LastError(), k.RetryAt().UTC().Format(time.RFC3339), cliPath(mount, "rotate/"+name)))
	}
	if k.Rejected() {
		resp.AddWarning(rejectedMessage(e.config, k, cliPath(mount, "rotate/"+name)))
	}
	if inDeadlineZone(k, now) {
		resp.AddWarning(deadlineMessage(k, now))
	}
}

// rejectedMessage says that the served key is dead, and what happens next;
// rotatePath is the organization's rotate path on its mount.
func rejectedMessage(cfg *orgConfig, k *keyState, rotatePath string) string {
	next := "rotate it now (vault write -f " + rotatePath + "), or import the key Cisco's dashboard shows"
	switch _, heals := bucketkey.HealDue(k, cfg.facts()); {
	case heals:
		next = "the plugin rotates it at the next tick (rotate_rejected_key)"
	case k.HealBlocked() != "":
		next = k.HealBlocked() + "; " + next
	case cfg.heals() && k.HealedLately():
		next = "until " + k.StormGuardFrom().Add(bucketkey.HealCooldown).UTC().Format(time.RFC3339) + ", a day after a heal of this organization " +
			"or a re-check marking its key stale again, it is not healed: something else may keep rotating it (a second config or " +
			"API key?), or STS flaps: " + next
	case cfg.heals() && !k.PassedAt(cfg.stsURL()):
		next = "AWS never accepted it at " + cfg.stsURL() + ", so the plugin does not rotate it: check sts_url, then " + next
	}
	return fmt.Sprintf("the served key %s is dead: AWS STS rejects it since %s (%s); it was replaced outside Vault, "+
		"for example by a refresh in Cisco's dashboard; %s", k.AccessKeyID(), k.RejectedAt().UTC().Format(time.RFC3339), k.VerifyError(), next)
}

// inDeadlineZone reports that the key is within 14 days of Cisco's lockout.
func inDeadlineZone(k *keyState, now time.Time) bool {
	return k.HasKey() && !now.Before(k.ExpiresAt().Add(-deadlineWarning))
}

func deadlineMessage(k *keyState, now time.Time) string {
	exp := k.ExpiresAt()
	if !now.Before(exp) {
		return fmt.Sprintf("the served key %s passed Cisco's 90-day lockout at %s: the organization has lost access "+
			"to its bucket; refresh the key in Cisco's dashboard and import it, or rotate now", k.AccessKeyID(), exp.Format(time.RFC3339))
	}
	return fmt.Sprintf("the served key %s reaches Cisco's 90-day lockout at %s (in %s) and has not been rotated: "+
		"check last_rotation_error on the config and rotate now", k.AccessKeyID(), exp.Format(time.RFC3339), exp.Sub(now).Truncate(time.Minute))
}

// keyResponse describes a newly stored key, without its secret.
func keyResponse(k *keyState) *logical.Response {
	return &logical.Response{Data: map[string]interface{}{
		"access_key_id":       k.AccessKeyID(),
		"old_access_key_id":   k.OldAccessKeyID(),
		"key_creation_date":   formatTime(k.KeyCreationDate()),
		"version":             k.Version(),
		"last_vault_rotation": formatTime(k.LastVaultRotation()),
	}}
}

// notConfiguredResponse is the 400 for a name without config/<name>.
func notConfiguredResponse(name string) *logical.Response {
	return logical.ErrorResponse("no organization %q is configured: write config/%s first", name, name)
}

// noKeyResponse is the 400 for an organization that has no key yet.
func noKeyResponse(mount, name string) *logical.Response {
	return logical.ErrorResponse("no key is stored for %q yet: run \"vault write -f %s\" to rotate now, "+
		"or store the key refreshed in Cisco's dashboard with \"vault write %s access_key_id=... "+
		"secret_access_key=... key_creation_date=...\"", name, cliPath(mount, "rotate/"+name), cliPath(mount, "import/"+name))
}

// cliPath is rel on the mount, as the Vault CLI takes it: mount is the
// request's MountPoint, such as "cisco-s3/" (with its slash).
func cliPath(mount, rel string) string {
	if mount == "" {
		mount = "<mount>/" // a request that came without one
	}
	if !strings.HasSuffix(mount, "/") {
		mount += "/"
	}
	return mount + rel
}

// formatTime renders RFC 3339 in UTC, or nil for the zero time.
func formatTime(t time.Time) interface{} {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}
