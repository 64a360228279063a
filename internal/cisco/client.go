package cisco

// The Cisco client: it takes a context and connection settings and returns
// a typed key or a typed error.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	// maxBodyBytes caps every reply body we read from Cisco.
	maxBodyBytes = 1 << 20
	// CallTimeout bounds one RotateKey call, token and 429 waits included.
	CallTimeout = 30 * time.Second
	// tokenRefreshMargin renews a cached token this long before it expires.
	tokenRefreshMargin = 5 * time.Minute
	// max429Retries bounds the retries of a rate-limited call.
	max429Retries = 3
	orgHeader     = "X-Umbrella-OrgId"
)

// Settings is what the client needs to reach one organization.
type Settings struct {
	ClientID     string
	ClientSecret string
	OrgID        string
	APIURL       string
	TokenURL     string
}

// String and GoString keep the secret out of any %v, %+v or %#v.
func (s Settings) String() string {
	return fmt.Sprintf("cisco.Settings{client_id: %s, client_secret: <redacted>, org_id: %s, api_url: %s}", s.ClientID, s.OrgID, s.APIURL)
}

func (s Settings) GoString() string { return s.String() }

// Client calls rotateKey for one organization and caches its token.
type Client struct {
	settings Settings
	http     *http.Client
	// timeout bounds one RotateKey call.
	timeout time.Duration
	// now dates a key whose reply has no readable keyCreationDate.
	now func() time.Time

	mu     sync.Mutex
	tokens oauth2.TokenSource
}

// ClientOption sets up a Client.
type ClientOption func(*Client)

// WithTransport carries every call of the client; nil means
// http.DefaultTransport.
func WithTransport(rt http.RoundTripper) ClientOption {
	return func(c *Client) {
		if rt != nil {
			c.http.Transport = rt
		}
	}
}

// WithTimeout bounds one RotateKey call; zero or less means CallTimeout.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithClock dates a key whose reply has no readable keyCreationDate; nil
// means time.Now.
func WithClock(now func() time.Time) ClientOption {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// NewClient builds a client for one organization; without options it uses
// http.DefaultTransport, CallTimeout and time.Now.
func NewClient(s Settings, opts ...ClientOption) *Client {
	c := &Client{
		settings: s,
		http:     &http.Client{Transport: http.DefaultTransport},
		timeout:  CallTimeout,
		now:      time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	c.http.Timeout = c.timeout
	return c
}

// Settings returns the settings the client was built with.
func (c *Client) Settings() Settings { return c.settings }

// orgHeaderTransport adds X-Umbrella-OrgId to token requests for multi-org
// and MSP consoles.
type orgHeaderTransport struct {
	orgID string
	next  http.RoundTripper
}

func (t orgHeaderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(orgHeader, t.orgID)
	return t.next.RoundTrip(r)
}

// tokenSource returns the cached token source, building it on first use.
func (c *Client) tokenSource() oauth2.TokenSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		hc := c.http
		if c.settings.OrgID != "" {
			hc = &http.Client{
				Transport: orgHeaderTransport{orgID: c.settings.OrgID, next: c.http.Transport},
				Timeout:   c.http.Timeout,
			}
		}
		cfg := &clientcredentials.Config{
			ClientID:     c.settings.ClientID,
			ClientSecret: c.settings.ClientSecret,
			TokenURL:     c.settings.TokenURL,
			AuthStyle:    oauth2.AuthStyleInHeader,
		}
		// The source outlives any one request, so it gets its own context;
		// the http.Client timeout bounds each token call.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		c.tokens = oauth2.ReuseTokenSourceWithExpiry(nil, tokenFetcher{cfg: cfg, ctx: ctx}, tokenRefreshMargin)
	}
	return c.tokens
}

// dropToken forgets the cached token so that the next call fetches a new one.
func (c *Client) dropToken() {
	c.mu.Lock()
	c.tokens = nil
	c.mu.Unlock()
}

type tokenFetcher struct {
	cfg *clientcredentials.Config
	ctx context.Context
}

func (f tokenFetcher) Token() (*oauth2.Token, error) { return f.cfg.Token(f.ctx) }

// token returns a valid access token, waiting out 429s within ctx.
func (c *Client) token(ctx context.Context) (string, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokenSource().Token()
		if err == nil {
			return tok.AccessToken, nil
		}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			status := re.Response.StatusCode
			if status == http.StatusTooManyRequests && attempt < max429Retries {
				c.dropToken()
				if werr := sleepCtx(ctx, retryAfter(re.Response.Header)); werr != nil {
					return "", &Error{Status: status, Message: "token endpoint rate limit: gave up waiting"}
				}
				continue
			}
			c.dropToken()
			msg := bodyError(re.Body)
			if msg == "" {
				msg = http.StatusText(status)
			}
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				msg = "Cisco rejected the API key (client_id/client_secret, org_id): " + msg
			} else {
				msg = "token request failed: " + msg
			}
			return "", &Error{Status: status, Message: msg}
		}
		c.dropToken()
		// Never echo err: a transport error may quote the token URL only,
		// but oauth2 errors can carry response bodies.
		return "", &Error{Message: "token request failed: " + transportReason(err)}
	}
}

// rotateScope is the scope Cisco's rotateKey needs.
const rotateScope = "admin.iam:write"

// Verify fetches a token, which checks the credentials without rotating
// anything, and reports a missing rotateScope when the answer lists scopes.
// The token stays cached for the first rotation.
func (c *Client) Verify(ctx context.Context) error {
	if _, err := c.token(ctx); err != nil {
		return err
	}
	tok, err := c.tokenSource().Token() // the cached token, unless it is about to expire
	if err != nil {
		// No detail: an oauth2 error may quote the answer's body.
		return &Error{Message: "token request failed"}
	}
	scopes, _ := tok.Extra("scope").(string)
	if scopes != "" && !slices.Contains(strings.Fields(scopes), rotateScope) {
		return &Error{Message: fmt.Sprintf("the API key's token has the scopes %q but not %s, which rotating the key needs: "+
			"add it to the API key in Cisco's dashboard", scopes, rotateScope), MissingScope: true}
	}
	return nil
}

// RotateKey calls POST {api}/iam/rotateKey. It never retries a request that
// Cisco may have acted on.
func (c *Client) RotateKey(ctx context.Context) (*IssuedKey, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	authRetried := false
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		status, header, body, err := c.post(ctx, tok)
		if err != nil {
			return nil, err
		}
		switch {
		case hasKeyPair(body): // Cisco issued a key: a second call would kill it
		case status == http.StatusUnauthorized || (status == http.StatusBadRequest && bodyError(body) == "invalid_request"):
			// Rejected at authentication, so Cisco did nothing: one retry
			// with a fresh token is safe.
			c.dropToken()
			if authRetried {
				return nil, &Error{Status: status, Message: "Cisco rejected a fresh token: " + orText(bodyError(body), "unauthorized")}
			}
			authRetried = true
			continue
		case status == http.StatusTooManyRequests:
			if attempt >= max429Retries {
				return nil, &Error{Status: status, Message: "Cisco rate limit: too many requests"}
			}
			if sleepCtx(ctx, retryAfter(header)) != nil {
				return nil, &Error{Status: status, Message: "Cisco rate limit: gave up waiting within the call deadline"}
			}
			continue
		}
		return parseRotateReply(status, body, c.now())
	}
}

// post sends the rotateKey request. A failure after the request was written
// is ambiguous; one before it is not.
func (c *Client) post(ctx context.Context, token string) (int, http.Header, []byte, error) {
	var wrote bool
	var wroteMu sync.Mutex
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		wroteMu.Lock()
		wrote = true
		wroteMu.Unlock()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost,
		strings.TrimRight(c.settings.APIURL, "/")+"/iam/rotateKey", nil)
	if err != nil {
		return 0, nil, nil, &Error{Message: "invalid api_url"}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)

	resp, err := c.http.Do(req)
	wroteMu.Lock()
	sent := wrote
	wroteMu.Unlock()
	if err != nil {
		return 0, nil, nil, &Error{Message: "rotateKey request failed: " + transportReason(err), Ambiguous: sent}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		reason := "reply body larger than 1 MiB"
		if err != nil {
			reason = "reading the reply failed: " + transportReason(err)
		}
		// Only a 2xx or 5xx may hide a rotation; a 4xx is a rejection.
		return 0, nil, nil, &Error{Status: resp.StatusCode, Message: reason,
			Ambiguous: resp.StatusCode < 400 || resp.StatusCode >= 500}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// retryAfter honours Retry-After in seconds, with a floor of 1 s; Cisco
// sends none today.
func retryAfter(h http.Header) time.Duration {
	if h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && n > 1 && n < 60 {
			return time.Duration(n) * time.Second
		}
	}
	return time.Second
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transportReason describes a transport error without echoing URLs or
// bodies that it might quote.
func transportReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed before a complete reply"
	}
	var ue interface{ Timeout() bool }
	if errors.As(err, &ue) && ue.Timeout() {
		return "timed out"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return truncate(msg, 120)
}
