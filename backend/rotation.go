package backend

// Rotating one organization's key: the collapse of concurrent requests, the
// Cisco call between WAL entries, storing the issued key or the failure,
// and the events.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Triggers of a rotation, reported in events.
const (
	triggerManual    = "manual"
	triggerScheduled = "scheduled"
	triggerRecovery  = "recovery"
)

// rotationCall lets concurrent rotate requests share one Cisco call.
type rotationCall struct {
	done chan struct{}
	key  *keyState
	err  error
}

// rotate rotates one organization's key. Concurrent calls for the same
// name share one Cisco call and its result.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name, trigger string) (*keyState, error) {
	b.inflightMu.Lock()
	if c, ok := b.inflight[name]; ok {
		b.inflightMu.Unlock()
		select {
		case <-c.done:
			return c.key, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &rotationCall{done: make(chan struct{})}
	b.inflight[name] = c
	b.inflightMu.Unlock()

	// A started rotation finishes and persists even if its caller leaves.
	c.key, c.err = b.runRotation(context.WithoutCancel(ctx), s, name, trigger)

	b.inflightMu.Lock()
	delete(b.inflight, name)
	b.inflightMu.Unlock()
	close(c.done)
	return c.key, c.err
}

// runRotation takes the name's lock, calls Cisco once and stores the
// outcome, with a WAL entry around the call.
func (b *backend) runRotation(ctx context.Context, s logical.Storage, name, trigger string) (*keyState, error) {
	e, unlock, err := b.lockOrg(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if e == nil {
		return nil, errNotConfigured
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	release, err := b.limiter.acquire(ctx, e.config.apiKey())
	if err != nil {
		return nil, err
	}
	defer release()

	walID, err := putRotationWAL(ctx, s, name, e.key, b.now())
	if err != nil {
		return nil, err
	}
	issued, callErr := b.client(name, e.config).rotateKey(ctx)
	now := b.now()
	if callErr != nil {
		var ce *ciscoError
		if errors.As(callErr, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden) {
			b.resetClient(name)
		}
		b.recordFailureLocked(ctx, s, name, e, callErr, trigger, walID, now)
		return nil, callErr
	}
	if issued.CreationDateMissing {
		b.logger.Warn("Cisco's reply had no readable keyCreationDate; using the time of the reply", "name", name, "access_key_id", issued.AccessKeyID)
	}
	next := successor(e.key, *issued, now)
	if err := putKey(ctx, s, name, next); err != nil {
		// Cisco replaced the key and we could not keep the new one: the
		// served key is dead. The WAL stays, so a restart sees it too.
		lostErr := &lostKeyError{name: name, accessKeyID: issued.AccessKeyID, cause: err}
		b.logger.Error("the key Cisco issued could not be stored and is lost; a new rotation is needed",
			"name", name, "access_key_id", issued.AccessKeyID, "error", err)
		failed := failedCopy(e.key)
		failed.markFailed(lostErr.Error(), now, true, true)
		b.setOrgLocked(name, &orgEntry{config: e.config, key: failed})
		b.walPending.Store(true)
		b.sendEvent(ctx, eventRotateFail, name, failed.Version, trigger, lostErr.Error())
		return nil, lostErr
	}
	// A WAL entry left behind is harmless: recovery sees that the stored
	// version moved on.
	b.deleteRotationWAL(ctx, s, name, walID)
	b.setOrgLocked(name, &orgEntry{config: e.config, key: next})
	b.logger.Info("rotated the S3 bucket key", "name", name, "version", next.Version, "access_key_id", next.AccessKeyID, "trigger", trigger)
	b.sendEvent(ctx, eventRotate, name, next.Version, trigger, "")
	return next, nil
}

// lostKeyError means Cisco issued a key that could not be stored.
type lostKeyError struct {
	name, accessKeyID string
	cause             error
}

func (e *lostKeyError) Error() string {
	return fmt.Sprintf("Cisco issued key %s but storing it failed (%v): that key is lost and the previous one is "+
		"likely dead; a new rotation is needed: vault write -f <mount>/rotate/%s", e.accessKeyID, e.cause, e.name)
}

func (e *lostKeyError) Unwrap() error { return e.cause }

// recordFailureLocked stores the failure on the organization. Ambiguous
// failures mark the key stale; scheduled ones retry with backoff.
func (b *backend) recordFailureLocked(ctx context.Context, s logical.Storage, name string, e *orgEntry, callErr error, trigger, walID string, now time.Time) {
	failed := failedCopy(e.key)
	ambiguous := isAmbiguous(callErr)
	failed.markFailed(callErr.Error(), now, ambiguous, trigger != triggerManual)
	if err := putKey(ctx, s, name, failed); err != nil {
		// Keep the WAL: the next tick or a restart marks the key stale again.
		b.logger.Error("could not store the rotation failure", "name", name, "error", err)
		b.walPending.Store(true)
	} else {
		b.deleteRotationWAL(ctx, s, name, walID)
	}
	b.setOrgLocked(name, &orgEntry{config: e.config, key: failed})
	level := b.logger.Warn
	if ambiguous {
		level = b.logger.Error
	}
	level("rotation failed", "name", name, "trigger", trigger, "ambiguous", ambiguous,
		"consecutive_failures", failed.ConsecutiveFailures, "error", callErr.Error())
	b.sendEvent(ctx, eventRotateFail, name, failed.Version, trigger, callErr.Error())
}

const (
	eventRotate     = "cisco-s3/rotate"
	eventRotateFail = "cisco-s3/rotate-fail"
)

// sendEvent emits a rotation event. Metadata never holds a secret.
func (b *backend) sendEvent(ctx context.Context, eventType, name string, version int, trigger, errText string) {
	pairs := []string{"name", name, "version", strconv.Itoa(version), "trigger", trigger}
	if errText != "" {
		pairs = append(pairs, "error", errText)
	}
	if err := logical.SendEvent(ctx, b.Backend, eventType, pairs...); err != nil && !errors.Is(err, framework.ErrNoEvents) {
		b.logger.Debug("could not send event", "type", eventType, "error", err)
	}
}
