package bucketkey

import (
	"encoding/json"
	"fmt"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Record is an organization's current key pair and the state of its life.
// It is stored as one entry, so that a read never mixes two versions. Its
// fields are this package's alone: outside it a Record is read through its
// methods and changed only by Step.
type Record struct{ f fields }

// fields is the stored form. The JSON names are the storage format: they
// never change.
type fields struct {
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

	// Origin is how the key came: OriginRotation or OriginImport; empty
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
	// after each of RecheckOffsets; RechecksDone counts those re-checks.
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
	// after it keep it: within HealCooldown of it, no key of the
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

// Origins of a key.
const (
	OriginRotation = "rotation"
	OriginImport   = "import"
)

func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(r.f) }

func (r *Record) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &r.f) }

// String and GoString keep the secret out of any %v, %+v or %#v.
func (r Record) String() string {
	return fmt.Sprintf("bucketkey.Record{access_key_id: %s, secret_access_key: <redacted>, version: %d, state: %s}",
		r.f.AccessKeyID, r.f.Version, r.State())
}

func (r Record) GoString() string { return r.String() }

// State names where the key is in its life.
type State string

const (
	// None: no key is stored, or only the failures of a first rotation.
	None State = "none"
	// Current: the served key is Cisco's current one, as far as anyone
	// knows.
	Current State = "current"
	// Stale: a rotation's outcome is unknown; Cisco may have replaced the
	// served key. Recovered as soon as possible.
	Stale State = "stale"
	// Replaced: Cisco issued a key that was lost; the served key is dead.
	Replaced State = "replaced"
	// Rejected: AWS rejected the served key twice, a minute or more
	// apart: it is dead.
	Rejected State = "rejected"
)

// State is where the key is in its life.
func (r *Record) State() State {
	switch {
	case r == nil:
		return None
	case r.f.Replaced:
		return Replaced
	case r.f.Stale:
		return Stale
	case r.f.Rejected:
		return Rejected
	case r.HasKey():
		return Current
	}
	return None
}

// Shown is the state as reads report it: a replaced key is stale there.
func (r *Record) Shown() string {
	if s := r.State(); s != Replaced {
		return string(s)
	}
	return string(Stale)
}

// HasKey reports whether a key pair is stored.
func (r *Record) HasKey() bool { return r != nil && r.f.AccessKeyID != "" }

// Read-only views of the record.

func (r *Record) AccessKeyID() string           { return r.f.AccessKeyID }
func (r *Record) SecretAccessKey() string       { return r.f.SecretAccessKey }
func (r *Record) OldAccessKeyID() string        { return r.f.OldAccessKeyID }
func (r *Record) KeyCreationDate() time.Time    { return r.f.KeyCreationDate }
func (r *Record) LastVaultRotation() time.Time  { return r.f.LastVaultRotation }
func (r *Record) Version() int                  { return r.f.Version }
func (r *Record) Stale() bool                   { return r.f.Stale }
func (r *Record) Replaced() bool                { return r.f.Replaced }
func (r *Record) LastError() string             { return r.f.LastError }
func (r *Record) LastErrorTime() time.Time      { return r.f.LastErrorTime }
func (r *Record) ConsecutiveFailures() int      { return r.f.ConsecutiveFailures }
func (r *Record) RetryAt() time.Time            { return r.f.RetryAt }
func (r *Record) Origin() string                { return r.f.Origin }
func (r *Record) SettledRotation() string       { return r.f.SettledRotation }
func (r *Record) VerifiedAt() time.Time         { return r.f.VerifiedAt }
func (r *Record) VerifyError() string           { return r.f.VerifyError }
func (r *Record) CheckResult() stscheck.Outcome { return r.f.CheckResult }
func (r *Record) StaleCleared() string          { return r.f.StaleCleared }
func (r *Record) RecheckFrom() time.Time        { return r.f.RecheckFrom }
func (r *Record) RechecksDone() int             { return r.f.RechecksDone }
func (r *Record) CheckTriedAt() time.Time       { return r.f.CheckTriedAt }
func (r *Record) CheckedAt() time.Time          { return r.f.CheckedAt }
func (r *Record) VerifiedSTSURL() string        { return r.f.VerifiedSTSURL }
func (r *Record) RejectedAt() time.Time         { return r.f.RejectedAt }
func (r *Record) Rejected() bool                { return r.f.Rejected }
func (r *Record) HealBlocked() string           { return r.f.HealBlocked }
func (r *Record) StormGuardFrom() time.Time     { return r.f.StormGuardFrom }
func (r *Record) Trigger() string               { return r.f.Trigger }
func (r *Record) GracefulAt() time.Time         { return r.f.GracefulAt }

// Is reports whether r holds the key of other: the same version and id.
// A check or a probe is recorded only on the key it checked.
func (r *Record) Is(other *Record) bool {
	return r != nil && other != nil && r.f.Version == other.f.Version && r.f.AccessKeyID == other.f.AccessKeyID
}

// SameHistory reports whether now is before with at most a check
// recorded since: no key stored and no rotation attempted in between.
func SameHistory(before, now *Record) bool {
	if before == nil || now == nil {
		return before == nil && now == nil
	}
	b, n := before.f, now.f
	return b.Version == n.Version && b.AccessKeyID == n.AccessKeyID && b.Stale == n.Stale &&
		b.ConsecutiveFailures == n.ConsecutiveFailures && b.LastErrorTime.Equal(n.LastErrorTime)
}

// SettlesRotation reports whether stored, the record in storage now,
// settles the rotation of WAL entry id, which started from version
// fromVersion of key fromID (empty when there was none).
func SettlesRotation(stored *Record, id string, fromVersion int, fromID string) bool {
	if stored == nil {
		// Only a delete removes a key: a rotation from a key that is gone
		// guards nothing. A first rotation (from no key) is still unknown.
		return fromVersion > 0
	}
	return stored.f.Version > fromVersion || stored.f.SettledRotation == id ||
		(fromID != "" && stored.f.AccessKeyID != fromID)
}

// NewerThan reports whether stored holds a newer key than cached: another
// instance on the same storage stored it.
func (r *Record) NewerThan(cached *Record) bool {
	return r != nil && (cached == nil || r.f.Version > cached.f.Version ||
		(r.f.Version == cached.f.Version && r.f.AccessKeyID != cached.f.AccessKeyID))
}

// RecoveryMayCheck reports whether a check of the stale key could spare it
// a recovery rotation: it may still work, and checks are on.
func (r *Record) RecoveryMayCheck(f Facts) bool {
	return r.HasKey() && r.f.Stale && !r.f.Replaced && f.KeyCheck
}

// copyOf is a copy of r to change, or of an empty record.
func copyOf(r *Record) *Record {
	if r == nil {
		return &Record{}
	}
	c := *r
	return &c
}
