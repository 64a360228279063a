package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

const keyPrefix = "key/"

// storeAttempts is how often a key write is tried before it is given up,
// and storeRetryWait the first wait between two tries; each wait doubles,
// so the tries span 3.1 s: a storage blip or a Raft election (1.7 s
// measured) passes, and a request's deadline still ends the waits.
const (
	storeAttempts  = 6
	storeRetryWait = 100 * time.Millisecond
)

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
	// StaleCleared says why a stale mark was lifted without a rotation.
	StaleCleared string `json:"stale_cleared,omitempty"`
	// RecheckFrom is when the key came out of a stale episode: its mark
	// was lifted, or it was stored while its predecessor was stale. A Cisco
	// call that timed out may still land, so the key is checked again
	// after each of recheckOffsets; RechecksDone counts those re-checks.
	// They are stored so that no restart or config change loses one. (The
	// JSON names date from when only a lift had re-checks.)
	RecheckFrom  time.Time `json:"stale_cleared_at"`
	RechecksDone int       `json:"lift_rechecks_done,omitempty"`

	// CheckTriedAt is when a check of this key last ran, answered or not;
	// CheckedAt when AWS last answered one (valid or invalid).
	CheckTriedAt time.Time `json:"key_check_tried_at"`
	CheckedAt    time.Time `json:"key_checked_at"`
	// VerifiedSTSURL is the sts_url at which AWS last accepted this key:
	// only a rejection at the same endpoint can show the key died.
	VerifiedSTSURL string `json:"key_verified_sts_url,omitempty"`
	// RejectedAt is when AWS first rejected this key in a row of
	// rejections; a second rejection a minute or more later marks it
	// Rejected: dead, shown as such, and healed when it passed before.
	RejectedAt time.Time `json:"key_rejected_at"`
	Rejected   bool      `json:"key_rejected,omitempty"`
	// HealBlocked says why a rejected key is not rotated by the heal.
	HealBlocked string `json:"heal_blocked,omitempty"`
	// StormGuardFrom is when a heal last stored the organization's key, or
	// a re-check last marked it stale again. Lifts and the keys stored
	// after it keep it: within healCooldown of it, no key of the
	// organization is healed or re-marked again (something else rotating
	// the organization, or a flapping STS, is the likelier cause).
	StormGuardFrom time.Time `json:"storm_guard_from,omitempty"`
	// Trigger is what stored the key: a rotation trigger, or import.
	Trigger string `json:"trigger,omitempty"`
	// GracefulAt is when a graceful rotation that an operator asked for
	// runs; zero when none is pending. Until a rotation stores a new key,
	// consumers re-read every 2 s.
	GracefulAt time.Time `json:"graceful_rotation_at"`
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
	case k.Rejected:
		return "rejected"
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
	var guard time.Time
	if prev != nil {
		version, guard = prev.Version, prev.StormGuardFrom
	}
	return &keyState{
		StormGuardFrom:    guard,
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
		k.Stale, k.StaleCleared, k.RecheckFrom, k.RechecksDone = true, "", time.Time{}, 0
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
// An answer (valid or invalid) dates CheckedAt; a pass at stsURL also
// ends any row of rejections.
func (k *keyState) withCheck(r stscheck.Result, stsURL string, now time.Time) *keyState {
	copied := *k
	copied.CheckResult = r.Outcome
	copied.CheckTriedAt = now
	switch r.Outcome {
	case stscheck.Valid:
		copied.VerifiedAt, copied.VerifyError, copied.CheckedAt = now, "", now
		copied.VerifiedSTSURL = stsURL
		if copied.Rejected {
			// A retry of a failed heal must not rotate a key that works.
			copied.RetryAt = time.Time{}
		}
		copied.RejectedAt, copied.Rejected, copied.HealBlocked = time.Time{}, false, ""
	case stscheck.Invalid:
		copied.CheckedAt = now
		fallthrough
	default:
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
