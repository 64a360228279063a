package backend

// The check of an API key when it is written: a token request, no rotation.

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

// credentialsChanged reports whether a config write changes what the token
// request sends.
func credentialsChanged(prev, next *orgConfig) bool {
	return prev.ClientID != next.ClientID || prev.ClientSecret != next.ClientSecret ||
		prev.tokenURL() != next.tokenURL() || prev.OrgID != next.OrgID
}

// verifyCredentials fetches a token with c, within one Cisco call's time.
// It takes the API key's turn like any Cisco call; a token request alone
// is not counted against the admin API's rate limits.
func (b *backend) verifyCredentials(ctx context.Context, cfg *orgConfig, c *cisco.Client) error {
	release, err := b.limiter.AcquireTurn(ctx, cfg.apiKey())
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, b.ciscoCallTimeout())
	defer cancel()
	return c.Verify(ctx)
}

// credentialCheckMessage says what a failed check means and how to fix it.
func credentialCheckMessage(cfg *orgConfig, err error) string {
	const skip = " Nothing was stored. To store the config without this check (offline setup), write it with verify_connection=false."
	var ce *cisco.Error
	if !errors.As(err, &ce) {
		return "checking the API key failed: " + err.Error() + "." + skip
	}
	switch {
	case ce.Status == http.StatusUnauthorized:
		return fmt.Sprintf("Cisco rejected the API key at %s (HTTP 401): client_id or client_secret is wrong. "+
			"Copy both from the API key in Cisco's dashboard (Admin > API Keys)."+skip, cfg.tokenURL())
	case ce.Status == http.StatusForbidden:
		return fmt.Sprintf("Cisco refused a token at %s (HTTP 403): the API key may not act on org_id %q. "+
			"Check org_id, or leave it empty for the API key's own organization."+skip, cfg.tokenURL(), cfg.OrgID)
	case ce.MissingScope:
		return ce.Message + "." + skip
	case ce.Status == 0:
		return fmt.Sprintf("could not reach the token URL %s: %s. Check token_url (or the provider) and that Vault "+
			"can reach it: the plugin needs HTTPS egress to Cisco's API."+skip, cfg.tokenURL(), ce.Message)
	}
	return fmt.Sprintf("the token request to %s failed: %s.%s", cfg.tokenURL(), ce.Error(), skip)
}
