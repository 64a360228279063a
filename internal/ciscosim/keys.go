package ciscosim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"
)

// ciscoDate is how Cisco writes keyCreationDate: UTC, without a zone.
const ciscoDate = "2006-01-02T15:04:05"

// replaceKeyLocked gives org a new key, as rotateKey and a dashboard
// refresh do; the old one stops working in AWS at once, the new one once
// Config.PropagationDelay has passed.
func (s *Server) replaceKeyLocked(org *OrgState) {
	org.OldKeyID = org.CurrentKeyID
	s.issueKeyLocked(org, s.cfg.PropagationDelay)
}

// issueKeyLocked sets org's current key, usable in AWS after delay. The
// issue time is real time, like the rate limits: propagation is a wait
// callers really sit through, whatever Config.Now says.
func (s *Server) issueKeyLocked(org *OrgState, delay time.Duration) {
	org.CurrentKeyID, org.SecretAccessKey = newKeyPair()
	org.KeyCreationDate = s.now().UTC().Format(ciscoDate)
	org.KeyIssuedAt = time.Now()
	org.KeyUsableAt = org.KeyIssuedAt.Add(delay)
}

const keyIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"

// newKeyPair returns an AWS-shaped access key id and secret.
func newKeyPair() (string, string) {
	return "AKIA" + randomFrom(keyIDAlphabet, 16), randomFrom(secretAlphabet, 40)
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newRequestID returns an AWS-shaped request id (a random UUID).
func newRequestID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
