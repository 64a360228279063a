package backend

// The whole mount at a glance, from memory: the rows of the status read and
// the per-organization metrics.

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// orgStatus is one organization's standing. It holds no secret.
type orgStatus struct {
	name                string
	keyState            string
	accessKeyID         string
	createdAt           time.Time // the start of the key's 90 days
	expiresAt           time.Time // zero without a key
	nextRotation        time.Time // zero when none is scheduled
	lastRotation        time.Time // when Vault last stored a key
	consecutiveFailures int
	lastError           string
	lastErrorTime       time.Time
	automationDisabled  bool
	verifiedAt          time.Time // when AWS last accepted the key
	verifyError         string    // the last check's failure, if any
	checkResult         stscheck.Outcome
	rejected            bool          // AWS rejects the key it accepted before
	checkedAt           time.Time     // when AWS last answered a check
	hasKey              bool          // false for a config without a key
	checkInterval       time.Duration // 0 when scheduled checks are off
	gracefulAt          time.Time     // a pending graceful rotation
}

// fleet returns every cached organization's standing, most urgent first: a
// rejected key (dead), a stale key (it may be dead already), then the soonest lockout, then the
// organizations with no key yet; ties by name.
func (b *backend) fleet(now time.Time) []orgStatus {
	entries := b.orgs.Snapshot()

	rows := make([]orgStatus, 0, len(entries))
	for name, e := range entries {
		rows = append(rows, statusOf(name, e, now))
	}
	sort.Slice(rows, func(i, j int) bool { return moreUrgent(rows[i], rows[j]) })
	return rows
}

func statusOf(name string, e *orgEntry, now time.Time) orgStatus {
	k := e.key
	if k == nil {
		k = &keyState{}
	}
	st := orgStatus{
		name:                name,
		keyState:            k.Shown(),
		accessKeyID:         k.AccessKeyID(),
		lastRotation:        k.LastVaultRotation(),
		consecutiveFailures: k.ConsecutiveFailures(),
		lastError:           k.LastError(),
		lastErrorTime:       k.LastErrorTime(),
		automationDisabled:  e.config.DisableAutomatedRotation,
		verifiedAt:          k.VerifiedAt(),
		verifyError:         k.VerifyError(),
		checkResult:         k.CheckResult(),
		rejected:            k.Rejected(),
		checkedAt:           k.CheckedAt(),
		hasKey:              k.HasKey(),
		checkInterval:       e.config.checkInterval(),
		gracefulAt:          k.GracefulAt(),
	}
	if k.HasKey() {
		st.createdAt, st.expiresAt = k.IssuedAt(), k.ExpiresAt()
	}
	if next, ok := bucketkey.NextRotation(k, e.config.facts(), now); ok {
		st.nextRotation = next
	}
	return st
}

func moreUrgent(a, b orgStatus) bool {
	if ra, rb := a.keyState == "rejected", b.keyState == "rejected"; ra != rb {
		return ra
	}
	if sa, sb := a.keyState == "stale", b.keyState == "stale"; sa != sb {
		return sa
	}
	if za, zb := a.expiresAt.IsZero(), b.expiresAt.IsZero(); za != zb {
		return zb
	}
	if !a.expiresAt.Equal(b.expiresAt) {
		return a.expiresAt.Before(b.expiresAt)
	}
	return a.name < b.name
}

// line is the standing as one line of field=value pairs, the fields of
// config/<name> reads, for the status read: Vault's table format prints a
// string as it is, where it would print a nested object as a Go map dump.
// Empty fields are left out; a value with a space or a quote is quoted as
// in Go.
func (st orgStatus) line(now time.Time) string {
	var sb strings.Builder
	add := func(field, value string) {
		if value == "" {
			return
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(field)
		sb.WriteByte('=')
		if strings.ContainsAny(value, " \"=\\") || !strconv.CanBackquote(value) {
			value = strconv.Quote(value)
		}
		sb.WriteString(value)
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	add("key_state", st.keyState)
	add("access_key_id", st.accessKeyID)
	add("expires_at", at(st.expiresAt))
	if !st.expiresAt.IsZero() {
		add("seconds_to_lockout", strconv.FormatInt(int64(st.expiresAt.Sub(now)/time.Second), 10))
	}
	add("next_vault_rotation", at(st.nextRotation))
	add("graceful_rotation_at", at(st.gracefulAt))
	if st.consecutiveFailures > 0 {
		add("consecutive_failures", strconv.Itoa(st.consecutiveFailures))
	}
	add("last_rotation_error", st.lastError)
	add("last_rotation_error_time", at(st.lastErrorTime))
	if st.automationDisabled {
		add("disable_automated_rotation", "true")
	}
	add("key_check_result", string(st.checkResult))
	add("key_verified_at", at(st.verifiedAt))
	add("key_verify_error", st.verifyError)
	return sb.String()
}
