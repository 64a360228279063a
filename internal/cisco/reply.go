package cisco

// What Cisco answers: the issued key, typed errors, and the parsing of
// rotateKey replies and key dates.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// IssuedKey is a key pair that Cisco returned.
type IssuedKey struct {
	AccessKeyID     string
	SecretAccessKey string
	OldAccessKeyID  string
	CreationDate    time.Time
	// CreationDateMissing is set when Cisco's date could not be read and
	// CreationDate holds the local time of the reply instead.
	CreationDateMissing bool
}

// Error is a failed call to Cisco. It never carries a secret.
type Error struct {
	// Status is the HTTP status, 0 when no reply arrived.
	Status int
	// Message is Cisco's own "error" text, or what went wrong locally.
	Message string
	// Ambiguous means Cisco may have rotated the key although the reply
	// was lost or unreadable: the served key may already be dead.
	Ambiguous bool
	// NotEnabled means the organization has no IAM key info yet: the first
	// rotation must be done in Cisco's dashboard.
	NotEnabled bool
	// MissingScope means the API key lacks the scope rotating needs.
	MissingScope bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Ambiguous {
		b.WriteString("outcome unknown, Cisco may have rotated the key and the reply was lost: ")
	}
	b.WriteString(e.Message)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.NotEnabled {
		b.WriteString("; the first rotation of an organization must be done once in Cisco's dashboard " +
			"(Admin > Log Management > Cisco-managed S3 bucket > Refresh key); then import that key " +
			"with import/<name> or rotate again")
	}
	return b.String()
}

func (k IssuedKey) String() string {
	return fmt.Sprintf("cisco.IssuedKey{access_key_id: %s, secret_access_key: <redacted>}", k.AccessKeyID)
}

func (k IssuedKey) GoString() string { return k.String() }

// IsAmbiguous reports whether err is an Error after which Cisco may have
// rotated the key.
func IsAmbiguous(err error) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.Ambiguous
}

// AccessKeyIDPattern and SecretKeyPattern are what a sane key pair looks
// like.
var (
	AccessKeyIDPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	SecretKeyPattern   = regexp.MustCompile(`^[A-Za-z0-9/+=]{16,128}$`)
)

// rotateReply is Cisco's rotateKey body, success or error.
type rotateReply struct {
	OldKeyID        string `json:"oldKeyId"`
	CurrentKeyID    string `json:"currentKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	KeyCreationDate string `json:"keyCreationDate"`
	Error           any    `json:"error"`
}

// parseRotateReply classifies a complete rotateKey reply. Success needs a
// 2xx, no error member, and a sane key pair. now dates a key whose
// keyCreationDate is unreadable.
func parseRotateReply(status int, body []byte, now time.Time) (*IssuedKey, error) {
	var reply rotateReply
	decodeErr := json.Unmarshal(body, &reply)
	errText := ""
	if decodeErr == nil && reply.Error != nil {
		errText = strings.TrimSpace(fmt.Sprint(reply.Error))
	}
	// A reply that carries a key pair is never a definite refusal: Cisco may
	// have rotated. With a 2xx and a blank error member it is a success.
	if decodeErr == nil && reply.CurrentKeyID != "" && reply.SecretAccessKey != "" {
		if status < 200 || status >= 300 || errText != "" {
			return nil, &Error{Status: status, Ambiguous: true,
				Message: "Cisco's reply carries a key pair and an error: " + truncate(orText(errText, http.StatusText(status)), 200)}
		}
	} else if decodeErr == nil && reply.Error != nil && errText == "" {
		errText = "error member present"
	}
	if errText != "" && strings.Contains(strings.ToLower(errText), "not found iam key info") {
		return nil, &Error{Status: status, Message: "Cisco: " + errText, NotEnabled: true}
	}
	switch {
	case status >= 500:
		return nil, &Error{Status: status, Message: "Cisco server error: " + orText(errText, http.StatusText(status)), Ambiguous: true}
	case status < 200 || status >= 300:
		return nil, &Error{Status: status, Message: "Cisco rejected the request: " + orText(errText, http.StatusText(status))}
	case errText != "":
		// A 2xx with an error body is Cisco's way of refusing.
		return nil, &Error{Status: status, Message: "Cisco: " + errText}
	case decodeErr != nil:
		return nil, &Error{Status: status, Message: "unreadable reply body", Ambiguous: true}
	case reply.CurrentKeyID == "" || reply.SecretAccessKey == "":
		return nil, &Error{Status: status, Message: "reply has no key pair", Ambiguous: true}
	case !AccessKeyIDPattern.MatchString(reply.CurrentKeyID) || !SecretKeyPattern.MatchString(reply.SecretAccessKey):
		return nil, &Error{Status: status, Message: "reply key pair has an unexpected format", Ambiguous: true}
	}
	key := &IssuedKey{
		AccessKeyID:     reply.CurrentKeyID,
		SecretAccessKey: reply.SecretAccessKey,
		OldAccessKeyID:  reply.OldKeyID,
	}
	created, err := ParseKeyCreationDate(reply.KeyCreationDate)
	if err != nil {
		key.CreationDate = now.UTC()
		key.CreationDateMissing = true
	} else {
		key.CreationDate = created
	}
	return key, nil
}

// keyDateLayouts are the zone-less forms Cisco uses; a fraction after the
// seconds is accepted by time.Parse on its own.
var keyDateLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// ParseKeyCreationDate reads RFC 3339, or Cisco's zone-less form as UTC.
func ParseKeyCreationDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range keyDateLayouts {
		if t, err := time.ParseInLocation(layout, strings.TrimSuffix(s, "Z"), time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date: use RFC 3339 (2025-03-12T22:00:00Z) or Cisco's form (2025-03-12T22:00:00, read as UTC)", truncate(s, 40))
}

// hasKeyPair reports whether a body carries a key pair.
func hasKeyPair(body []byte) bool {
	var v rotateReply
	return json.Unmarshal(body, &v) == nil && v.CurrentKeyID != "" && v.SecretAccessKey != ""
}

// bodyError returns the "error" member of a JSON body, if any.
func bodyError(body []byte) string {
	var v struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == nil {
		return ""
	}
	return truncate(strings.TrimSpace(fmt.Sprint(v.Error)), 200)
}

func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
