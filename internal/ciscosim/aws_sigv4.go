package ciscosim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWS Signature Version 4 checks for the STS and S3 the simulator plays.
// The expected signature is computed by aws-sdk-go-v2's own signer, so a
// request passes here exactly when a correctly signed request would.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// maxClockSkew is how far X-Amz-Date may be from now, as in AWS.
	maxClockSkew = 15 * time.Minute
	// maxAWSBody caps what is read of an AWS request's body; STS and
	// read-only S3 calls carry a few dozen bytes at most.
	maxAWSBody = 64 << 10
)

// sigV4Header is what an AWS4-HMAC-SHA256 Authorization header says.
type sigV4Header struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

// parseSigV4Header reads "AWS4-HMAC-SHA256 Credential=<AKID>/<date>/
// <region>/<service>/aws4_request, SignedHeaders=a;b, Signature=<hex>".
func parseSigV4Header(h string) (sigV4Header, bool) {
	var a sigV4Header
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch name {
		case "Credential":
			scope := strings.Split(value, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return a, false
			}
			a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(value, ";")
		case "Signature":
			a.signature = value
		}
	}
	ok = a.accessKeyID != "" && a.date != "" && a.region != "" && a.service != "" &&
		len(a.signedHeaders) > 0 && a.signature != ""
	return a, ok
}

// sigV4Verdict is what a signature check found.
type sigV4Verdict int

const (
	sigV4OK sigV4Verdict = iota
	// sigV4Missing: no Authorization header (presigned URLs are not
	// simulated either).
	sigV4Missing
	// sigV4Malformed: not a SigV4 header we can read, or no valid
	// X-Amz-Date.
	sigV4Malformed
	// sigV4UnknownKey: not an organization's current key id, or one AWS
	// does not know yet (propagation).
	sigV4UnknownKey
	// sigV4Skewed: X-Amz-Date is more than maxClockSkew from now.
	sigV4Skewed
	// sigV4PayloadMismatch: X-Amz-Content-Sha256 is not the body's hash.
	sigV4PayloadMismatch
	// sigV4BadSignature: wrong secret, tampered request, or signed for
	// another service.
	sigV4BadSignature
)

// sigV4Check is the outcome of checking one request's signature.
type sigV4Check struct {
	verdict  sigV4Verdict
	auth     sigV4Header
	signedAt time.Time
	org      OrgState // whose current key signed; zero if none is known
}

// checkSigV4 checks that r, whose body has been read into body, is signed
// for service with an organization's current, propagated key.
func (s *Server) checkSigV4(r *http.Request, body []byte, service string) sigV4Check {
	h := r.Header.Get("Authorization")
	if h == "" {
		return sigV4Check{verdict: sigV4Missing}
	}
	auth, ok := parseSigV4Header(h)
	signedAt, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if !ok || err != nil {
		return sigV4Check{verdict: sigV4Malformed, auth: auth}
	}
	c := sigV4Check{auth: auth, signedAt: signedAt}
	s.mu.Lock()
	org, known := s.orgForKeyLocked(auth.accessKeyID)
	s.mu.Unlock()
	now := time.Now()
	if !known || now.Before(org.KeyUsableAt) {
		c.verdict = sigV4UnknownKey
		return c
	}
	c.org = org
	if d := now.Sub(signedAt); d > maxClockSkew || d < -maxClockSkew {
		c.verdict = sigV4Skewed
		return c
	}
	bodyHash := sha256Hex(body)
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payloadHash == "":
		payloadHash = bodyHash
	case isSHA256Hex(payloadHash) && !strings.EqualFold(payloadHash, bodyHash):
		c.verdict = sigV4PayloadMismatch
		return c
	}
	// Other X-Amz-Content-Sha256 values (UNSIGNED-PAYLOAD, STREAMING-...)
	// are signed as they are, as S3 does.
	want, err := expectedSignature(r, auth, org.SecretAccessKey, payloadHash, signedAt)
	if auth.service != service || err != nil || !hmac.Equal([]byte(want), []byte(auth.signature)) {
		c.verdict = sigV4BadSignature
	}
	return c
}

// expectedSignature signs a copy of r that carries only the headers r
// says it signed, and returns that signature.
func expectedSignature(r *http.Request, auth sigV4Header, secret, payloadHash string, signedAt time.Time) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https" // so the signer drops :443 from host as clients do
	}
	clone := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range auth.signedHeaders {
		switch name {
		case "host": // the signer always signs it, from clone.Host
		case "content-length":
			// The signer signs content-length from ContentLength, and
			// only when it is above zero: set it only when it was signed.
			length := r.Header.Get("Content-Length")
			if length == "" {
				length = strconv.FormatInt(r.ContentLength, 10)
			}
			n, err := strconv.ParseInt(length, 10, 64)
			if err != nil {
				return "", fmt.Errorf("signed content-length: %w", err)
			}
			clone.ContentLength = n
		default:
			values := r.Header.Values(name)
			if len(values) == 0 {
				return "", fmt.Errorf("signed header %q is not in the request", name)
			}
			clone.Header[http.CanonicalHeaderKey(name)] = values
		}
	}
	creds := aws.Credentials{AccessKeyID: auth.accessKeyID, SecretAccessKey: secret}
	err := v4.NewSigner().SignHTTP(r.Context(), creds, clone, payloadHash, auth.service, auth.region, signedAt,
		func(o *v4.SignerOptions) {
			// S3 signs the path as sent; other services escape it again.
			o.DisableURIPathEscaping = auth.service == "s3"
		})
	if err != nil {
		return "", err
	}
	got, ok := parseSigV4Header(clone.Header.Get("Authorization"))
	if !ok {
		return "", fmt.Errorf("the signer wrote an unreadable Authorization header")
	}
	return got.signature, nil
}

// orgForKeyLocked finds the organization whose current key id is keyID.
func (s *Server) orgForKeyLocked(keyID string) (OrgState, bool) {
	if keyID == "" {
		return OrgState{}, false
	}
	for _, o := range s.orgs {
		if o.CurrentKeyID == keyID {
			return *o, true
		}
	}
	return OrgState{}, false
}

// signingOrgID is the id of the organization whose current key id signed
// r, or "": what an org-scoped fault matches.
func (s *Server) signingOrgID(r *http.Request) string {
	auth, _ := parseSigV4Header(r.Header.Get("Authorization"))
	s.mu.Lock()
	defer s.mu.Unlock()
	org, _ := s.orgForKeyLocked(auth.accessKeyID)
	return org.OrgID
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func isSHA256Hex(v string) bool {
	_, err := hex.DecodeString(v)
	return len(v) == 64 && err == nil
}
