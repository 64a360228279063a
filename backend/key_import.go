package backend

// Importing a key refreshed in Cisco's dashboard: its validation, its
// check against AWS, and what it keeps of the key it replaces.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

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

// freshKeyAge is how recent a key must be for a rejection of its id to be
// taken as AWS not having it yet; importRecheckRounds is how often such a
// key is checked again, with waits of firstWait, 2×, 4×, 8× (15 s).
const (
	freshKeyAge         = 10 * time.Minute
	importRecheckRounds = 4
)

// checkImportedKey checks a key before an import stores it. AWS may not
// know a key refreshed a moment ago, so an unknown id of a fresh key is
// checked again for a few seconds.
func (b *backend) checkImportedKey(ctx context.Context, cfg *orgConfig, k cisco.IssuedKey, now time.Time) stscheck.Result {
	key := &keyState{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}
	r := b.checkKey(ctx, cfg, key, checkImport)
	fresh := now.Sub(k.CreationDate) < freshKeyAge
	wait := b.probes.firstWait
	for round := 0; fresh && r.Half == stscheck.HalfID && round < importRecheckRounds; round++ {
		if sleepCtx(ctx, wait) != nil {
			break
		}
		r = b.checkKey(ctx, cfg, key, checkImport)
		wait *= 2
	}
	return r
}

// importRefusedMessage says which half of an imported key AWS rejected,
// and, when the heal rotated after the key was refreshed, that the plugin
// has already replaced it.
func importRefusedMessage(imported cisco.IssuedKey, r stscheck.Result, served *keyState) string {
	accessKeyID := imported.AccessKeyID
	skip := " Nothing was stored. To store it without the check, write verify=false."
	if served != nil && served.Trigger == triggerHeal && served.LastVaultRotation.After(imported.CreationDate) {
		skip = fmt.Sprintf(" The plugin already replaced it: the served key %s was rotated at %s because AWS rejected "+
			"the key before it (the heal), which killed the key you imported. Nothing was stored; read creds/<name> for the "+
			"key that works.", served.AccessKeyID, served.LastVaultRotation.UTC().Format(time.RFC3339))
	}
	if r.Half == stscheck.HalfSecret {
		return fmt.Sprintf("AWS STS rejected secret_access_key: it does not belong to access_key_id %s (SignatureDoesNotMatch). "+
			"Copy the secret access key again from Cisco's dashboard."+skip, accessKeyID)
	}
	return fmt.Sprintf("AWS STS rejected access_key_id %s: AWS does not know it (InvalidClientTokenId). Check that it is the "+
		"access key id Cisco's dashboard showed after the latest refresh; an older one stops working at the refresh."+skip, accessKeyID)
}

// keepStaleMark carries a stale mark over to an import of the very key it
// is on, unless a check that late enough to prove anything showed that the
// key works: importing the key id that Cisco may have replaced proves
// nothing about it.
func keepStaleMark(prev, next *keyState, now time.Time) bool {
	if prev == nil || !prev.Stale || prev.AccessKeyID != next.AccessKeyID {
		return false
	}
	if !prev.Replaced && !next.VerifiedAt.IsZero() && settledSinceMark(prev, now) {
		return false
	}
	next.Stale, next.LastError, next.LastErrorTime = true, prev.LastError, prev.LastErrorTime
	next.ConsecutiveFailures, next.RetryAt, next.Replaced = prev.ConsecutiveFailures, prev.RetryAt, prev.Replaced
	return true
}

// keepLiftRechecks carries the re-checks of a lifted stale mark over to an
// import of the very key it was lifted from: importing the key proves
// nothing about a Cisco call that may still land.
func keepLiftRechecks(prev, next *keyState) {
	if prev != nil && !prev.Stale && !prev.RecheckFrom.IsZero() && prev.AccessKeyID == next.AccessKeyID {
		next.StaleCleared, next.RecheckFrom, next.RechecksDone = prev.StaleCleared, prev.RecheckFrom, prev.RechecksDone
	}
}

// importedSuccessor is the key an import stores over prev, checked (check
// nil when not) at stsURL. It reports whether prev's stale mark was kept:
// importing the very key that a stale mark is on proves nothing unless a
// late enough check showed that it works. A key stored while its
// predecessor was stale is re-checked, as a lifted key is: a Cisco call of
// the stale episode may still land.
func importedSuccessor(prev *keyState, imported cisco.IssuedKey, check *stscheck.Result, stsURL string, now time.Time) (next *keyState, keptStale bool) {
	// The id this key replaced; importing the served key again keeps it.
	if prev != nil {
		imported.OldAccessKeyID = prev.AccessKeyID
		if prev.AccessKeyID == imported.AccessKeyID {
			imported.OldAccessKeyID = prev.OldAccessKeyID
		}
	}
	next = successor(prev, imported, originImport, now)
	next.Trigger = originImport
	if prev != nil {
		// A pending graceful rotation ends only by a plain rotate or a
		// delete: an import, of the served key or another, keeps it.
		next.GracefulAt = prev.GracefulAt
	}
	next.StormGuardFrom = time.Time{} // an operator acted: the guard ends
	if check != nil {
		next = next.withCheck(*check, stsURL, now)
	}
	keptStale = keepStaleMark(prev, next, now)
	keepLiftRechecks(prev, next)
	if check == nil && prev != nil && prev.AccessKeyID == next.AccessKeyID && prev.SecretAccessKey == next.SecretAccessKey {
		// The very key again, unchecked: what AWS last said of it still
		// stands, a pass (which proves nothing about a stale mark, kept
		// above) and a rejection alike.
		next.VerifiedAt, next.VerifiedSTSURL, next.CheckedAt = prev.VerifiedAt, prev.VerifiedSTSURL, prev.CheckedAt
		next.RejectedAt, next.Rejected, next.CheckResult, next.VerifyError = prev.RejectedAt, prev.Rejected, prev.CheckResult, prev.VerifyError
	}
	switch {
	case keptStale || prev == nil || !prev.Stale:
	case prev.AccessKeyID == next.AccessKeyID:
		// A proving check lifted the mark of the re-imported key.
		next.StaleCleared = fmt.Sprintf("%s: AWS STS accepted the re-imported key %s a minute or more after the stale mark, "+
			"so Cisco did not replace it; the mark (%s) was lifted", now.UTC().Format(time.RFC3339), next.AccessKeyID, prev.LastError)
		next.RecheckFrom, next.RechecksDone = now, 0
	default:
		next.RecheckFrom, next.RechecksDone = now, 0
	}
	return next, keptStale
}
