package bucketkey

// Effects is what the shell must do after a step, in this order: store
// the new record (when Store), serve it, then log, count and notify.
type Effects struct {
	// Store: write the new record before serving it.
	Store bool
	// KeepUnstored: serve the new record even when storage refuses it,
	// for what it says must be shown (a stale mark, a rejection).
	KeepUnstored bool
	// WALIfUnstored: when storage refuses the new record, write a WAL
	// entry of the key instead and feed RemarkWAL, so that a restart sees
	// the mark too.
	WALIfUnstored bool
	// Logs are the lines to log, with the organization's name added.
	Logs []Log
	// Count is the rotation outcome to count, if any.
	Count Outcome
	// Notice is the event to send, if any.
	Notice *Notice
	// Rotate: a recovery goes on to rotate (on the new record).
	Rotate bool
	// Probe: check the new key until AWS accepts it.
	Probe bool
}

// Outcome is a rotation's outcome as the rotations metric counts it.
type Outcome string

const (
	CountSuccess      Outcome = "success"
	CountFailure      Outcome = "failure"
	CountLost         Outcome = "lost"
	CountStaleCleared Outcome = "stale_cleared"
)

// Outcomes are all the outcomes the rotations metric counts.
var Outcomes = []Outcome{CountSuccess, CountFailure, CountLost, CountStaleCleared}

// The prefixes of the ERROR lines an operator alerts on; docs/operations.md
// quotes them, and a test ties the two. Every failed rotation logs a line
// that starts with LogRotationFailed, and every served key that may be
// dead one that starts with LogKeyMayBeDead. WARN is for what heals
// itself.
const (
	LogRotationFailed = "rotation failed"
	LogKeyMayBeDead   = "the served key may be dead"
)

// Level is a log line's level.
type Level int

const (
	Debug Level = iota
	Info
	Warn
	Error
)

func (l Level) String() string { return [...]string{"DEBUG", "INFO", "WARN", "ERROR"}[l] }

// Log is one log line: a message and key-value pairs, never a secret.
type Log struct {
	Level Level
	Msg   string
	KV    []interface{}
}

// Notice is an event for subscribers: its kind, the trigger and the
// message of a failure.
type Notice struct {
	Kind    string
	Trigger string
	Message string
}

// Kinds of events sent to subscribers.
const (
	NoticeRotate     = "cisco-s3/rotate"
	NoticeRotateFail = "cisco-s3/rotate-fail"
	// NoticeKeyRejected: AWS rejects the served key, which it accepted
	// before: the key is dead.
	NoticeKeyRejected = "cisco-s3/key-rejected"
)

func (e *Effects) log(l Level, msg string, kv ...interface{}) {
	e.Logs = append(e.Logs, Log{Level: l, Msg: msg, KV: kv})
}
