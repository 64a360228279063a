package backend

// A graceful rotation: asked for now, run once every consumer re-reads
// every 2 s, so that none holds the old key for long after Cisco kills it.

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
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
	case !o.e.key.hasKey():
		return nil, noKeyResponse(mount, name), nil
	case !o.e.key.GracefulAt.IsZero():
		return o.e.key, nil, nil // joins the pending one
	}
	next := *o.e.key
	next.GracefulAt = b.now().Add(gracefulWait).Truncate(time.Second)
	if err := o.storeKey(ctx, &next); err != nil {
		return nil, nil, err
	}
	b.logger.Info("graceful rotation requested: consumers re-read every 2 s until it runs", "name", name,
		"rotates_at", next.GracefulAt.Format(time.RFC3339))
	return &next, nil, nil
}
