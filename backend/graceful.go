package backend

// A graceful rotation: asked for now, run once every consumer re-reads
// every 2 s, so that none holds the old key for long after Cisco kills it.

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
)

// gracefulWait is how long after a graceful request its rotation runs: the
// longest a consumer may wait to re-read (the ttl cap and Vault Agent's
// extra second), plus a margin for its render and a loaded machine.
const gracefulWait = credsRereadInterval + time.Second + 10*time.Second

// requestGraceful stores a graceful rotation of name's key, due
// gracefulWait from now, or joins the one already pending. It calls no
// one: the tick rotates. mount is the mount point its 400s name.
func (b *backend) requestGraceful(ctx context.Context, s logical.Storage, mount, name string) (*keyState, *logical.Response, error) {
	o, err := b.lockOrg(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	defer o.unlock()
	switch {
	case o.e == nil:
		return nil, notConfiguredResponse(name), nil
	case !o.e.key.HasKey():
		return nil, noKeyResponse(mount, name), nil
	}
	next, _, err := o.step(ctx, bucketkey.GracefulRequested{After: gracefulWait}, triggerGraceful)
	if err != nil {
		return nil, nil, err
	}
	return next, nil, nil
}
