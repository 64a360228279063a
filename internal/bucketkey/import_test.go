package bucketkey

import (
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// A key stored while its predecessor was stale is re-checked: a Cisco
// call of the stale episode may still land. So is a re-imported key whose
// mark a check lifted; a re-import of a key whose mark stays is not.
func TestImported_RechecksAfterAStaleEpisode(t *testing.T) {
	now := t0.Add(time.Hour)
	f := intervalFacts(time.Hour)
	f.STSURL = "https://sts.example"
	stale := checkedKey(t0)
	stale.markFailed("outcome unknown", t0, true, true, 0)
	imp := func(prev *Record, k cisco.IssuedKey, check *stscheck.Result) (*Record, bool) {
		next, _ := Step(prev, Imported{Key: k, Check: check}, f, now)
		return next, next.Stale()
	}
	other := cisco.IssuedKey{AccessKeyID: "AKIAEXAMPLE0000002", SecretAccessKey: "secretsecretsecret02", CreationDate: now}
	next, kept := imp(stale, other, nil)
	if kept || !next.RecheckFrom().Equal(now) || next.RechecksDone() != 0 {
		t.Fatalf("a new key imported over a stale mark: kept %v, recheck from %v", kept, next.RecheckFrom())
	}
	same := cisco.IssuedKey{AccessKeyID: stale.AccessKeyID(), SecretAccessKey: "secretsecretsecret01", CreationDate: t0}
	next, kept = imp(stale, same, nil)
	if !kept || !next.RecheckFrom().IsZero() {
		t.Fatalf("an unchecked re-import of the stale key: kept %v, recheck from %v", kept, next.RecheckFrom())
	}
	valid := stscheck.Result{Outcome: stscheck.Valid}
	next, kept = imp(stale, same, &valid)
	if kept || !next.RecheckFrom().Equal(now) || next.StaleCleared() == "" {
		t.Fatalf("a proven re-import of the stale key: kept %v, recheck from %v", kept, next.RecheckFrom())
	}
	next, _ = imp(checkedKey(t0), other, nil)
	if !next.RecheckFrom().IsZero() {
		t.Fatal("an import over a healthy key is re-checked as if out of a stale episode")
	}
}
