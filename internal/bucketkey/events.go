package bucketkey

import (
	"time"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Triggers of a rotation: what asked for it. Events report them.
const (
	TriggerManual    = "manual"
	TriggerScheduled = "scheduled"
	TriggerRecovery  = "recovery"
	// TriggerHeal rotates a key that AWS rejects after accepting it.
	TriggerHeal = "heal"
	// TriggerGraceful runs a graceful rotation that an operator asked for.
	TriggerGraceful = "graceful"
)

// Triggers are all the triggers of a rotation, as metrics and events
// report them.
var Triggers = []string{TriggerManual, TriggerScheduled, TriggerRecovery, TriggerGraceful, TriggerHeal}

// Event is something that happened to the key, or that an operator
// asked for. Step says what it changes.
type Event interface{ event() }

// Rotated: Cisco answered a rotation with a new key. The shell stores the
// new record, and feeds Lost when storage refuses it.
type Rotated struct {
	Issued  cisco.IssuedKey
	WALID   string
	Trigger string
}

// Lost: Cisco issued a key that storage refused: the served key is dead.
// Message says so (it names the lost key id, never its secret); Cause is
// storage's error.
type Lost struct {
	IssuedID, Message, Cause string
	WALID, Trigger           string
	Jitter                   uint64
}

// Failed: a rotation got no key. Ambiguous says that Cisco may have
// rotated all the same (no reply, a 5xx); else Cisco refused. WALID is
// empty when Cisco was not called. Jitter is any random number: it spreads
// the retries of many organizations.
type Failed struct {
	Message   string
	Ambiguous bool
	Trigger   string
	WALID     string
	Jitter    uint64
}

// Imported: an operator imported a key from Cisco's dashboard. Check is
// what AWS said of it before the import, nil when it was not checked.
type Imported struct {
	Key   cisco.IssuedKey
	Check *stscheck.Result
}

// Checked: AWS answered (or did not) a check of Of, the served key when
// the check started at At. Trigger is what ran it: a scheduled check or
// verify.
type Checked struct {
	Of      *Record
	Result  stscheck.Result
	At      time.Time
	Trigger string
}

// Probed: a probe of Of, a rotated key, ended with Result.
type Probed struct {
	Of     *Record
	Result stscheck.Result
}

// StaleChecked: a recovery checked Of, the stale key, at At before it
// would rotate it.
type StaleChecked struct {
	Of     *Record
	Result stscheck.Result
	At     time.Time
}

// GracefulRequested: an operator asked for a graceful rotation; it runs
// After from now.
type GracefulRequested struct{ After time.Duration }

// WALFound: the rotation WAL holds an entry, ID, of a rotation started at
// Started that no running rotation owns and whose outcome storage does not
// hold: Vault stopped or storage failed during it.
type WALFound struct {
	ID      string
	Started time.Time
}

// RemarkWAL: a stale mark that storage refused was written to the WAL as
// entry ID instead, so that a restart marks the key too.
type RemarkWAL struct{ ID string }

// HealBlocked: the heal found another config, Other, acting on the same
// Cisco organization; Reason says so to the operator.
type HealBlocked struct{ Other, Reason string }

// SettingsChanged: the config's Cisco settings changed, which may fix
// what failed.
type SettingsChanged struct{}

func (Rotated) event()           {}
func (Lost) event()              {}
func (Failed) event()            {}
func (Imported) event()          {}
func (Checked) event()           {}
func (Probed) event()            {}
func (StaleChecked) event()      {}
func (GracefulRequested) event() {}
func (WALFound) event()          {}
func (RemarkWAL) event()         {}
func (HealBlocked) event()       {}
func (SettingsChanged) event()   {}
