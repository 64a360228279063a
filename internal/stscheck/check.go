package stscheck

// The key check: AWS STS GetCallerIdentity signed with the S3 bucket key.
// The call needs no IAM permission, so any live key answers with its
// account and ARN. The checker knows nothing of Vault.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"golang.org/x/time/rate"
)

// Outcome is what a check says of a key. Its values are stored: they must
// not change.
type Outcome string

const (
	// Valid: AWS accepted the key.
	Valid Outcome = "valid"
	// Invalid: AWS rejected the key id or its secret.
	Invalid Outcome = "invalid"
	// Unknown: no answer about the key (network, 5xx, throttling).
	Unknown Outcome = "unknown"
)

const (
	// Timeout bounds one check.
	Timeout = 10 * time.Second
	// keyCheckMaxBody caps what is read of STS's answer.
	keyCheckMaxBody = 64 << 10
	// defaultSTSRegion signs checks for which no bucket region is known.
	defaultSTSRegion = "us-east-1"
	stsRequestBody   = "Action=GetCallerIdentity&Version=2011-06-15"
)

// HalfID and HalfSecret name the half of a key that AWS rejected.
const (
	HalfID     = "access_key_id"
	HalfSecret = "secret_access_key"
)

// Result is the outcome of one check. It never holds the secret.
type Result struct {
	Outcome Outcome
	Account string
	ARN     string
	// Code is AWS's error code, when AWS answered one.
	Code string
	// Half is which half of the key AWS rejected, for Invalid.
	Half string
	// Reason says why the key is not valid.
	Reason string
}

// String describes the result in one line for logs, errors and reads.
func (r Result) String() string {
	if r.Outcome == Valid {
		return fmt.Sprintf("valid: account %s, %s", r.Account, r.ARN)
	}
	return string(r.Outcome) + ": " + r.Reason
}

// Checker signs and sends GetCallerIdentity calls.
type Checker struct {
	http    *http.Client
	timeout time.Duration

	mu sync.Mutex
	// silentSince is when each endpoint last gave no answer; an answer
	// clears it.
	silentSince map[string]time.Time
	// limiters keep the calls to each endpoint within rate per second, so
	// that thousands of keys due at once never flood STS.
	limiters map[string]*rate.Limiter
	rate     rate.Limit
}

// DefaultRate is how many checks per second one endpoint gets by default.
const DefaultRate = 10

// SilenceHold is how long an endpoint that gave no answer is taken as
// unreachable by callers that would rather not wait for it.
const SilenceHold = time.Minute

// Option sets up a Checker.
type Option func(*Checker)

// WithTransport carries every check; nil means http.DefaultTransport.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Checker) {
		if rt != nil {
			c.http.Transport = rt
		}
	}
}

// WithTimeout bounds one check; zero or less means Timeout.
func WithTimeout(d time.Duration) Option {
	return func(c *Checker) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRate caps the checks sent to one endpoint at perSecond; zero or
// less means no cap.
func WithRate(perSecond float64) Option {
	return func(c *Checker) {
		c.rate = rate.Inf
		if perSecond > 0 {
			c.rate = rate.Limit(perSecond)
		}
	}
}

// New builds a checker; without options it uses http.DefaultTransport and
// Timeout.
func New(opts ...Option) *Checker {
	// Redirects are not followed: a signed request is bound to its host.
	client := &http.Client{Transport: http.DefaultTransport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	c := &Checker{http: client, timeout: Timeout, silentSince: make(map[string]time.Time),
		limiters: make(map[string]*rate.Limiter), rate: DefaultRate}
	for _, o := range opts {
		o(c)
	}
	return c
}

// limiter is the endpoint's rate limiter, made on first use.
func (c *Checker) limiter(endpoint string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.limiters[endpoint]
	if !ok {
		burst := 1
		if c.rate != rate.Inf && c.rate > 1 {
			burst = int(c.rate)
		}
		l = rate.NewLimiter(c.rate, burst)
		c.limiters[endpoint] = l
	}
	return l
}

// Silent reports whether endpoint gave no answer in the last
// SilenceHold.
func (c *Checker) Silent(endpoint string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	since, ok := c.silentSince[endpoint]
	return ok && time.Since(since) < SilenceHold
}

func (c *Checker) noteAnswer(endpoint string, answered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if answered {
		delete(c.silentSince, endpoint)
	} else {
		c.silentSince[endpoint] = time.Now()
	}
}

// Endpoint is where a key is checked: the override, else the regional
// endpoint of the bucket's region, else the global endpoint.
func Endpoint(override, region string) string {
	switch {
	case override != "":
		return override
	case region != "":
		return "https://sts." + region + ".amazonaws.com"
	}
	return "https://sts.amazonaws.com"
}

// Check asks STS whether the key id and secret are a live key. region
// signs the call; empty means us-east-1.
func (c *Checker) Check(ctx context.Context, endpoint, region, accessKeyID, secret string) Result {
	if region == "" {
		region = defaultSTSRegion
	}
	// The wait for the endpoint's rate is not the check's own time.
	if err := c.limiter(endpoint).Wait(ctx); err != nil {
		return unknownResult(fmt.Sprintf("not sent: the checks of %s are over their rate of %v per second", endpoint, c.rate))
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/", strings.NewReader(stsRequestBody))
	if err != nil {
		return unknownResult(fmt.Sprintf("building the request to %s: %v", endpoint, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	sum := sha256.Sum256([]byte(stsRequestBody))
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret}
	// A signer per check: a signer caches its signing key by access key
	// id, region and day, not by secret, so a shared one would sign a
	// mistyped secret with the right one's key and pass it.
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", region, time.Now()); err != nil {
		return unknownResult("signing the request: " + err.Error())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if caller.Err() == nil {
			// Only STS's own silence counts, not a caller that left.
			c.noteAnswer(endpoint, false)
		}
		// The URL error names only the endpoint; the request carries the
		// signature, never the secret.
		return unknownResult(fmt.Sprintf("no answer from %s: %v", endpoint, unwrapURLError(err)))
	}
	c.noteAnswer(endpoint, true)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, keyCheckMaxBody))
	if err != nil {
		return unknownResult(fmt.Sprintf("reading the answer of %s: %v", endpoint, err))
	}
	return classifySTSAnswer(resp.StatusCode, body)
}

type stsIdentity struct {
	Result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
}

type stsError struct {
	Error struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
}

// classifySTSAnswer turns STS's answer into an outcome. Only a rejection
// of the key itself is invalid; anything else says nothing of the key.
func classifySTSAnswer(status int, body []byte) Result {
	if status == http.StatusOK {
		var id stsIdentity
		if err := xml.Unmarshal(body, &id); err != nil || id.Result.Account == "" || id.Result.Arn == "" {
			return unknownResult("STS answered 200 without an account and ARN: is sts_url an STS endpoint?")
		}
		return Result{Outcome: Valid, Account: id.Result.Account, ARN: id.Result.Arn}
	}
	var e stsError
	_ = xml.Unmarshal(body, &e)
	code := truncate(e.Error.Code, 60)
	switch code {
	case "InvalidClientTokenId":
		return Result{Outcome: Invalid, Code: code, Half: HalfID,
			Reason: "AWS does not know the access key id (InvalidClientTokenId): it is mistyped, or Cisco has replaced it"}
	case "SignatureDoesNotMatch":
		if notAboutTheSecret(e.Error.Message) {
			// AWS answers this code when the clock or the signing region
			// is wrong too: that says nothing of the key.
			return Result{Outcome: Unknown, Code: code,
				Reason: "STS refused the request's signature for a reason other than the key (" + truncate(e.Error.Message, 120) +
					"): check the clock of Vault's host and sts_url's region"}
		}
		return Result{Outcome: Invalid, Code: code, Half: HalfSecret,
			Reason: "the secret access key does not belong to the access key id (SignatureDoesNotMatch)"}
	}
	r := unknownResult(fmt.Sprintf("STS answered HTTP %d", status))
	if code != "" {
		r.Code = code
		r.Reason += " " + code
	}
	return r
}

// notAboutTheSecret reports whether a SignatureDoesNotMatch message names
// a cause other than the secret: a skewed clock or a wrong region scope.
func notAboutTheSecret(message string) bool {
	for _, cause := range []string{"Signature expired", "Signature not yet current", "Credential should be scoped"} {
		if strings.Contains(message, cause) {
			return true
		}
	}
	return false
}

func unknownResult(reason string) Result {
	return Result{Outcome: Unknown, Reason: reason}
}

// unwrapURLError drops the method and URL that *url.Error repeats.
func unwrapURLError(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
