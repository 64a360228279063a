package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const keyPrefix = "key/"

// storeAttempts is how often a key write is tried before it is given up.
const storeAttempts = 4

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
	Stale bool `json:"stale,omitempty"`
	// Replaced means Cisco certainly replaced the served key: it issued a
	// key that was lost. No check lifts such a mark.
	Replaced            bool      `json:"replaced,omitempty"`
	LastError           string    `json:"last_rotation_error,omitempty"`
	LastErrorTime       time.Time `json:"last_rotation_error_time"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	// RetryAt is when the scheduler retries after a failure; zero when no
	// retry is pending.
	RetryAt time.Time `json:"retry_at"`

	// Origin is how the key came: originRotation or originImport; empty
	// for keys stored before it was recorded.
	Origin string `json:"origin,omitempty"`
	// SettledRotation is the WAL id of the last rotation whose outcome is
	// stored here, so that recovery can tell it from an unknown one.
	SettledRotation string `json:"settled_rotation,omitempty"`

	// VerifiedAt is when AWS STS last accepted this key; VerifyError is
	// the last check's failure, empty once a check passes.
	VerifiedAt  time.Time `json:"key_verified_at"`
	VerifyError string    `json:"key_verify_error,omitempty"`
	// CheckResult is the last check's outcome; empty before any check.
	CheckResult stscheck.Outcome `json:"key_check_result,omitempty"`
	// StaleCleared says why a stale mark was lifted without a rotation,
	// and StaleClearedAt when: the key is checked again for a while after,
	// and LiftRechecksDone counts those re-checks. They are stored so that
	// no restart or config change loses one.
	StaleCleared     string    `json:"stale_cleared,omitempty"`
	StaleClearedAt   time.Time `json:"stale_cleared_at"`
	LiftRechecksDone int       `json:"lift_rechecks_done,omitempty"`
}

const (
	originRotation = "rotation"
	originImport   = "import"
	// creationDateTolerance is how far Cisco's keyCreationDate may be from
	// the time the plugin rotated before the rotation time counts instead.
	creationDateTolerance = time.Hour
)

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
// For a key the plugin rotated, Cisco's date counts only when it is close
// to the rotation: a bogus date far in the past would make the key due
// again at once.
func (k *keyState) issuedAt() time.Time {
	created, rotated := k.KeyCreationDate, k.LastVaultRotation
	switch {
	case created.IsZero():
		return rotated
	case rotated.IsZero():
		return created
	case k.Origin == originRotation && !datesAgree(created, rotated):
		return rotated
	case created.Before(rotated):
		return created
	}
	return rotated
}

// datesAgree reports whether two instants are within creationDateTolerance.
func datesAgree(a, b time.Time) bool {
	d := a.Sub(b)
	return -creationDateTolerance <= d && d <= creationDateTolerance
}

// expiresAt is Cisco's lockout of this key.
func (k *keyState) expiresAt() time.Time {
	if !k.hasKey() {
		return time.Time{}
	}
	return k.issuedAt().Add(keyLifetime)
}

// getKey reads the stored key of an organization, (nil, nil) when none.
func getKey(ctx context.Context, s logical.Storage, name string) (*keyState, error) {
	var k keyState
	ok, err := getJSON(ctx, s, keyPrefix+name, &k)
	if err != nil || !ok {
		return nil, err
	}
	return &k, nil
}

// successor is the key that replaces prev: a new version with a clean
// status.
func successor(prev *keyState, k cisco.IssuedKey, origin string, now time.Time) *keyState {
	version := 0
	if prev != nil {
		version = prev.Version
	}
	return &keyState{
		AccessKeyID:       k.AccessKeyID,
		SecretAccessKey:   k.SecretAccessKey,
		OldAccessKeyID:    k.OldAccessKeyID,
		KeyCreationDate:   k.CreationDate,
		LastVaultRotation: now,
		Version:           version + 1,
		Origin:            origin,
	}
}

// markFailed records a failed rotation. retry schedules the next attempt
// with backoff; stale marks the served key as possibly dead.
func (k *keyState) markFailed(msg string, now time.Time, stale, retry bool) {
	k.LastError = msg
	k.LastErrorTime = now
	k.ConsecutiveFailures++
	if stale {
		k.Stale, k.StaleCleared, k.StaleClearedAt, k.LiftRechecksDone = true, "", time.Time{}, 0
	}
	if retry || k.Stale {
		wait := retryBackoff(k.ConsecutiveFailures)
		// The last day before the lockout is never spent in long waits.
		if k.hasKey() && k.expiresAt().Sub(now) < 24*time.Hour && wait > lastDayBackoff {
			wait = lastDayBackoff
		}
		k.RetryAt = now.Add(wait).Truncate(time.Second)
	}
}

// withCheck is a copy of k with a check's result recorded.
func (k *keyState) withCheck(r stscheck.Result, now time.Time) *keyState {
	copied := *k
	copied.CheckResult = r.Outcome
	if r.Outcome == stscheck.Valid {
		copied.VerifiedAt, copied.VerifyError = now, ""
	} else {
		copied.VerifyError = now.UTC().Format(time.RFC3339) + ": " + r.String()
	}
	return &copied
}

// sameKeyHistory reports whether now is before with at most a check
// recorded since: no key stored and no rotation attempted in between.
func sameKeyHistory(before, now *keyState) bool {
	if before == nil || now == nil {
		return before == nil && now == nil
	}
	return before.Version == now.Version && before.AccessKeyID == now.AccessKeyID && before.Stale == now.Stale &&
		before.ConsecutiveFailures == now.ConsecutiveFailures && before.LastErrorTime.Equal(now.LastErrorTime)
}

// retryingAt is a copy of k whose next retry is at t.
func (k *keyState) retryingAt(t time.Time) *keyState {
	copied := *k
	copied.RetryAt = t
	return &copied
}

// failedCopy is a copy of k, or of an empty key, to mark a failure on.
func failedCopy(k *keyState) *keyState {
	if k == nil {
		return &keyState{}
	}
	copied := *k
	return &copied
}

// clockSkew tolerates a key_creation_date slightly in the future.
const clockSkew = 5 * time.Minute

// parseImportedKey validates a key pair refreshed in Cisco's dashboard.
// Its errors are caller mistakes, and never quote the secret.
func parseImportedKey(id, secret, date string, now time.Time) (cisco.IssuedKey, error) {
	id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
	switch {
	case id == "":
		return cisco.IssuedKey{}, errors.New("access_key_id is required")
	case !cisco.AccessKeyIDPattern.MatchString(id):
		return cisco.IssuedKey{}, errors.New("access_key_id must be 16 to 128 upper-case letters and digits, e.g. AKIARB5FPGFNZR3BZAXN")
	case secret == "":
		return cisco.IssuedKey{}, errors.New("secret_access_key is required")
	case !cisco.SecretKeyPattern.MatchString(secret):
		return cisco.IssuedKey{}, errors.New("secret_access_key must be 16 to 128 characters of A-Z, a-z, 0-9, /, + and =")
	case strings.TrimSpace(date) == "":
		return cisco.IssuedKey{}, errors.New("key_creation_date is required, e.g. 2025-03-12T22:00:00 (UTC) or 2025-03-12T22:00:00Z")
	}
	created, err := cisco.ParseKeyCreationDate(date)
	if err != nil {
		return cisco.IssuedKey{}, fmt.Errorf("key_creation_date: %w", err)
	}
	switch {
	case created.After(now.Add(clockSkew)):
		return cisco.IssuedKey{}, fmt.Errorf("key_creation_date %s is in the future", created.Format(time.RFC3339))
	case !created.Add(keyLifetime).After(now):
		return cisco.IssuedKey{}, fmt.Errorf("key_creation_date %s is 90 days or more ago: Cisco has locked this key; "+
			"refresh it in Cisco's dashboard and import the new one", created.Format(time.RFC3339))
	}
	return cisco.IssuedKey{AccessKeyID: id, SecretAccessKey: secret, CreationDate: created}, nil
}
