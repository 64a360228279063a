package bucketkey

// The transition table in docs/development.md is this file's output: the
// test fails when the code and the table disagree. Write it again with
//
//	go test ./internal/bucketkey -run TestTransitionTable -update

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

var update = flag.Bool("update", false, "write the transition table into docs/development.md")

const docPath = "../../docs/development.md"

const (
	tableStart = "<!-- transition table: written by go test ./internal/bucketkey -run TestTransitionTable -update -->"
	tableEnd   = "<!-- end of the transition table -->"
)

// tableNow is the time every row of the table happens at.
var tableNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func tableFacts() Facts {
	return Facts{STSURL: "https://sts.amazonaws.com", KeyCheck: true, Heals: true, Automated: true,
		Period: 60 * 24 * time.Hour, CheckInterval: time.Hour}
}

// fixture is a record in one of the states of a key's life.
type fixture struct {
	name string
	rec  *Record
}

func fixtures() []fixture {
	T := tableNow
	current := func() *Record {
		return &Record{f: fields{AccessKeyID: "AKIASERVED000000001", SecretAccessKey: "served-secret-0000000001",
			KeyCreationDate: T.AddDate(0, 0, -10), LastVaultRotation: T.AddDate(0, 0, -10), Version: 3, Origin: OriginRotation,
			Trigger: TriggerScheduled, VerifiedAt: T.Add(-30 * time.Minute), VerifiedSTSURL: "https://sts.amazonaws.com",
			CheckResult: stscheck.Valid, CheckTriedAt: T.Add(-30 * time.Minute), CheckedAt: T.Add(-30 * time.Minute)}}
	}
	with := func(edit func(k *fields)) *Record {
		r := current()
		edit(&r.f)
		return r
	}
	stale := func(k *fields, markedAgo time.Duration) {
		k.Stale, k.LastError, k.LastErrorTime = true, "Cisco gave no reply", T.Add(-markedAgo)
		k.ConsecutiveFailures, k.RetryAt = 1, T.Add(-markedAgo).Add(time.Minute)
	}
	return []fixture{
		{"none", nil},
		{"current", current()},
		{"current, rejected once", with(func(k *fields) {
			k.RejectedAt, k.CheckResult, k.CheckedAt, k.CheckTriedAt = T.Add(-2*time.Minute), stscheck.Invalid, T.Add(-2*time.Minute), T.Add(-2*time.Minute)
		})},
		{"current, re-checking", with(func(k *fields) { k.RecheckFrom = T.Add(-10 * time.Minute) })},
		{"current, graceful pending", with(func(k *fields) { k.GracefulAt = T.Add(time.Minute) })},
		{"stale", with(func(k *fields) { stale(k, 5*time.Minute) })},
		{"stale, marked 10 s ago", with(func(k *fields) { stale(k, 10*time.Second) })},
		{"replaced", with(func(k *fields) { stale(k, 5*time.Minute); k.Replaced = true })},
		{"current, re-checking, rejected once", with(func(k *fields) {
			k.RecheckFrom = T.Add(-10 * time.Minute)
			k.RejectedAt, k.CheckResult, k.CheckedAt, k.CheckTriedAt = T.Add(-2*time.Minute), stscheck.Invalid, T.Add(-2*time.Minute), T.Add(-2*time.Minute)
		})},
		{"rejected", rejectedFixture(with)},
		{"rejected, heal blocked", with(func(k *fields) {
			*k = rejectedFixture(with).f
			k.HealBlocked = "config/acme-2 acts on the same Cisco organization"
		})},
		{"rejected, storm guard", with(func(k *fields) {
			*k = rejectedFixture(with).f
			k.StormGuardFrom = T.Add(-time.Hour)
		})},
		{"stale, outcome of wal-9 known here", with(func(k *fields) { stale(k, 5*time.Minute); k.SettledRotation = "wal-9" })},
	}
}

func rejectedFixture(with func(edit func(k *fields)) *Record) *Record {
	T := tableNow
	return with(func(k *fields) {
		k.RejectedAt, k.Rejected, k.CheckResult = T.Add(-3*time.Minute), true, stscheck.Invalid
		k.CheckedAt, k.CheckTriedAt = T.Add(-2*time.Minute), T.Add(-2*time.Minute)
	})
}

// tableEvent is an event as the table names it; of builds it for the
// record it happens to.
type tableEvent struct {
	name string
	of   func(r *Record) Event
}

func tableEvents() []tableEvent {
	T := tableNow
	issued := cisco.IssuedKey{AccessKeyID: "AKIAISSUED000000001", SecretAccessKey: "issued-secret-000000001", CreationDate: T}
	valid := stscheck.Result{Outcome: stscheck.Valid, Account: "123456789012"}
	invalid := stscheck.Result{Outcome: stscheck.Invalid, Reason: "InvalidClientTokenId", Half: stscheck.HalfID}
	unknown := stscheck.Result{Outcome: stscheck.Unknown, Reason: "no answer"}
	served := func(r *Record) cisco.IssuedKey {
		if r == nil {
			return issued
		}
		return cisco.IssuedKey{AccessKeyID: r.f.AccessKeyID, SecretAccessKey: r.f.SecretAccessKey, CreationDate: r.f.KeyCreationDate}
	}
	ev := func(name string, e Event) tableEvent { return tableEvent{name, func(*Record) Event { return e }} }
	return []tableEvent{
		ev("rotated (scheduled)", Rotated{Issued: issued, WALID: "wal-1", Trigger: TriggerScheduled}),
		ev("rotated (heal)", Rotated{Issued: issued, WALID: "wal-1", Trigger: TriggerHeal}),
		ev("refused (scheduled)", Failed{Message: "Cisco refused (403)", Trigger: TriggerScheduled, WALID: "wal-1"}),
		ev("refused (manual)", Failed{Message: "Cisco refused (403)", Trigger: TriggerManual, WALID: "wal-1"}),
		ev("ambiguous", Failed{Message: "no reply", Ambiguous: true, Trigger: TriggerScheduled, WALID: "wal-1"}),
		ev("ambiguous (heal)", Failed{Message: "no reply", Ambiguous: true, Trigger: TriggerHeal, WALID: "wal-1"}),
		ev("lost", Lost{IssuedID: issued.AccessKeyID, Message: "the issued key is lost", Cause: "storage refused", WALID: "wal-1", Trigger: TriggerScheduled}),
		ev("imported: another key, AWS accepts it", Imported{Key: issued, Check: &valid}),
		{"imported: the served key, unchecked", func(r *Record) Event { return Imported{Key: served(r)} }},
		{"check: valid", func(r *Record) Event { return Checked{Of: r, Result: valid, At: T, Trigger: "scheduled"} }},
		{"check: invalid", func(r *Record) Event { return Checked{Of: r, Result: invalid, At: T, Trigger: "scheduled"} }},
		{"check: no answer", func(r *Record) Event { return Checked{Of: r, Result: unknown, At: T, Trigger: "scheduled"} }},
		{"check: invalid, started before the last check", func(r *Record) Event {
			return Checked{Of: r, Result: invalid, At: T.Add(-40 * time.Minute), Trigger: "scheduled"}
		}},
		{"check of an older key", func(r *Record) Event { return Checked{Of: &Record{}, Result: invalid, At: T, Trigger: "scheduled"} }},
		{"probe: valid", func(r *Record) Event { return Probed{Of: r, Result: valid} }},
		{"stale check: valid", func(r *Record) Event { return StaleChecked{Of: r, Result: valid, At: T} }},
		{"stale check: invalid", func(r *Record) Event { return StaleChecked{Of: r, Result: invalid, At: T} }},
		ev("graceful requested", GracefulRequested{After: 61 * time.Second}),
		ev("WAL entry found", WALFound{ID: "wal-9", Started: T.Add(-time.Hour)}),
		ev("WAL entry of a re-mark", RemarkWAL{ID: "wal-9"}),
		ev("heal blocked", HealBlocked{Other: "acme-2", Reason: "config/acme-2 acts on the same Cisco organization"}),
		ev("settings changed", SettingsChanged{}),
	}
}

// describe names a record's state and pending intents.
func describe(r *Record) string {
	s := string(r.State())
	if r == nil {
		return s
	}
	var intents []string
	if !r.f.RejectedAt.IsZero() && !r.f.Rejected {
		intents = append(intents, "rejected once")
	}
	if !r.f.RecheckFrom.IsZero() && r.f.RechecksDone < len(RecheckOffsets) {
		intents = append(intents, "re-checks")
	}
	if !r.f.GracefulAt.IsZero() {
		intents = append(intents, "graceful")
	}
	if !r.f.RetryAt.IsZero() {
		intents = append(intents, "retry "+relative(r.f.RetryAt))
	}
	if !r.f.StormGuardFrom.IsZero() && r.StormGuarded(tableNow) {
		intents = append(intents, "storm guard")
	}
	if r.f.HealBlocked != "" {
		intents = append(intents, "heal blocked")
	}
	if r.f.SettledRotation != "" {
		intents = append(intents, "settles "+r.f.SettledRotation)
	}
	if len(intents) > 0 {
		s += ", " + strings.Join(intents, ", ")
	}
	return s
}

// relative is t as a time from tableNow.
func relative(t time.Time) string {
	d := t.Sub(tableNow)
	switch {
	case d <= 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("+%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("+%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("+%dh", int(d.Hours()))
	}
	return fmt.Sprintf("+%dd", int(d.Hours()/24))
}

// effectsText names what the shell does.
func effectsText(eff Effects) string {
	var parts []string
	switch {
	case eff.Store && eff.WALIfUnstored:
		parts = append(parts, "store (if refused: keep, and a WAL entry)")
	case eff.Store && eff.KeepUnstored:
		parts = append(parts, "store (if refused: keep)")
	case eff.Store:
		parts = append(parts, "store")
	}
	for _, l := range eff.Logs {
		parts = append(parts, l.Level.String())
	}
	if eff.Notice != nil {
		parts = append(parts, strings.TrimPrefix(eff.Notice.Kind, "cisco-s3/")+" ("+eff.Notice.Trigger+")")
	}
	if eff.Count != "" {
		parts = append(parts, "count "+string(eff.Count))
	}
	if eff.Rotate {
		parts = append(parts, "rotate")
	}
	if eff.Probe {
		parts = append(parts, "probe")
	}
	return strings.Join(parts, "; ")
}

// nextText is when the tick next acts on the record.
func nextText(r *Record, f Facts) string {
	var parts []string
	if at, ok := NextRotation(r, f, tableNow); ok {
		parts = append(parts, "rotate "+relative(at))
	}
	if at, ok := NextCheck("acme", r, f); ok {
		parts = append(parts, "check "+relative(at))
	}
	return strings.Join(parts, ", ")
}

func marshal(t *testing.T, r *Record) string {
	if r == nil {
		return "null"
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// transitionTable steps every fixture through every event. A pair that
// changes nothing and does nothing is left out of the table.
func transitionTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| from | event | to | effects | next |\n|---|---|---|---|---|\n")
	f := tableFacts()
	for _, fx := range fixtures() {
		for _, te := range tableEvents() {
			next, eff := Step(fx.rec, te.of(fx.rec), f, tableNow)
			if marshal(t, next) == marshal(t, fx.rec) && effectsText(eff) == "" {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", fx.name, te.name, describe(next), effectsText(eff), nextText(next, f))
		}
	}
	return b.String()
}

func TestTransitionTable(t *testing.T) {
	table := transitionTable(t)
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no transition table between %q and %q", docPath, tableStart, tableEnd)
	}
	i += len(tableStart) + 1
	if *update {
		if err := os.WriteFile(docPath, []byte(doc[:i]+table+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := doc[i:j]; got != table {
		gotRows, wantRows := strings.Split(got, "\n"), strings.Split(table, "\n")
		for n := 0; n < len(gotRows) || n < len(wantRows); n++ {
			var g, w string
			if n < len(gotRows) {
				g = gotRows[n]
			}
			if n < len(wantRows) {
				w = wantRows[n]
			}
			if g != w {
				t.Fatalf("docs/development.md's transition table differs from the code at row %d:\n doc:  %s\n code: %s\n"+
					"write it again with: go test ./internal/bucketkey -run TestTransitionTable -update", n+1, g, w)
			}
		}
	}
}
