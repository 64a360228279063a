package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
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
	Stale               bool      `json:"stale,omitempty"`
	LastError           string    `json:"last_rotation_error,omitempty"`
	LastErrorTime       time.Time `json:"last_rotation_error_time"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	// RetryAt is when the scheduler retries after a failure; zero when no
	// retry is pending.
	RetryAt time.Time `json:"retry_at"`
}

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
func (k *keyState) issuedAt() time.Time {
	switch {
	case k.KeyCreationDate.IsZero():
		return k.LastVaultRotation
	case k.LastVaultRotation.IsZero() || k.KeyCreationDate.Before(k.LastVaultRotation):
		return k.KeyCreationDate
	}
	return k.LastVaultRotation
}

// expiresAt is Cisco's lockout of this key.
func (k *keyState) expiresAt() time.Time {
	if !k.hasKey() {
		return time.Time{}
	}
	return k.issuedAt().Add(keyLifetime)
}

func getKeyState(ctx context.Context, s logical.Storage, name string) (*keyState, error) {
	var k keyState
	ok, err := getJSON(ctx, s, keyPrefix+name, &k)
	if err != nil || !ok {
		return nil, err
	}
	return &k, nil
}

// storeKey writes the key, retrying a few times: the key exists only in
// memory until it lands.
func (b *backend) storeKey(ctx context.Context, s logical.Storage, name string, k *keyState) error {
	var err error
	for attempt := 0; attempt < storeAttempts; attempt++ {
		if attempt > 0 {
			if sleepCtx(ctx, time.Duration(attempt)*100*time.Millisecond) != nil {
				break
			}
		}
		if err = putJSON(ctx, s, keyPrefix+name, k); err == nil {
			return nil
		}
	}
	return err
}

// markFailed records a failed rotation. retry schedules the next attempt
// with backoff; stale marks the served key as possibly dead.
func (k *keyState) markFailed(msg string, now time.Time, stale, retry bool) {
	k.LastError = msg
	k.LastErrorTime = now
	k.ConsecutiveFailures++
	if stale {
		k.Stale = true
	}
	if retry || k.Stale {
		k.RetryAt = now.Add(retryBackoff(k.ConsecutiveFailures)).Truncate(time.Second)
	}
}
