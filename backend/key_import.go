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
	r := b.checkPair(ctx, cfg, k.AccessKeyID, k.SecretAccessKey, checkImport)
	fresh := now.Sub(k.CreationDate) < freshKeyAge
	wait := b.probes.firstWait
	for round := 0; fresh && r.Half == stscheck.HalfID && round < importRecheckRounds; round++ {
		if sleepCtx(ctx, wait) != nil {
			break
		}
		r = b.checkPair(ctx, cfg, k.AccessKeyID, k.SecretAccessKey, checkImport)
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
	if served != nil && served.Trigger() == triggerHeal && served.LastVaultRotation().After(imported.CreationDate) {
		skip = fmt.Sprintf(" The plugin already replaced it: the served key %s was rotated at %s because AWS rejected "+
			"the key before it (the heal), which killed the key you imported. Nothing was stored; read creds/<name> for the "+
			"key that works.", served.AccessKeyID(), served.LastVaultRotation().UTC().Format(time.RFC3339))
	}
	if r.Half == stscheck.HalfSecret {
		return fmt.Sprintf("AWS STS rejected secret_access_key: it does not belong to access_key_id %s (SignatureDoesNotMatch). "+
			"Copy the secret access key again from Cisco's dashboard."+skip, accessKeyID)
	}
	return fmt.Sprintf("AWS STS rejected access_key_id %s: AWS does not know it (InvalidClientTokenId). Check that it is the "+
		"access key id Cisco's dashboard showed after the latest refresh; an older one stops working at the refresh."+skip, accessKeyID)
}
