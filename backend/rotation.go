package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
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

// errNotConfigured is a caller mistake.
var errNotConfigured = errors.New("not configured")

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
	c.key, c.err = b.rotateLocked(context.WithoutCancel(ctx), s, name, trigger)

	b.inflightMu.Lock()
	delete(b.inflight, name)
	b.inflightMu.Unlock()
	close(c.done)
	return c.key, c.err
}

func (b *backend) rotateLocked(ctx context.Context, s logical.Storage, name, trigger string) (*keyState, error) {
	lock := locksutil.LockForKey(b.locks, name)
	lock.Lock()
	defer lock.Unlock()

	e, err := b.orgLocked(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errNotConfigured
	}
	if !b.writeSafe() {
		return nil, logical.ErrReadOnly
	}
	prev := e.key
	if prev == nil {
		prev = &keyState{}
	}

	release, err := b.sched.acquireAPIKey(ctx, e.config.apiKey())
	if err != nil {
		return nil, err
	}
	defer release()

	walID, err := framework.PutWAL(ctx, s, walKindRotate, &rotationWAL{Name: name, Version: prev.Version, Started: b.now()})
	if err != nil {
		return nil, fmt.Errorf("writing the rotation WAL failed, Cisco was not called: %w", err)
	}

	issued, callErr := b.client(name, e.config).rotateKey(ctx)
	now := b.now()
	if callErr != nil {
		var ce *ciscoError
		if errors.As(callErr, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden) {
			b.resetClient(name)
		}
		b.recordFailure(ctx, s, name, e, callErr, trigger, walID, now)
		return nil, callErr
	}
	if issued.CreationDateMissing {
		b.logger.Warn("Cisco's reply had no readable keyCreationDate; using the time of the reply", "name", name, "access_key_id", issued.AccessKeyID)
	}

	next := &keyState{
		AccessKeyID:       issued.AccessKeyID,
		SecretAccessKey:   issued.SecretAccessKey,
		OldAccessKeyID:    issued.OldAccessKeyID,
		KeyCreationDate:   issued.CreationDate,
		LastVaultRotation: now,
		Version:           prev.Version + 1,
	}
	if err := b.storeKey(ctx, s, name, next); err != nil {
		// Cisco replaced the key and we could not keep the new one: the
		// served key is dead. The WAL stays, so a restart sees it too.
		lostErr := &lostKeyError{name: name, accessKeyID: issued.AccessKeyID, cause: err}
		b.logger.Error("the key Cisco issued could not be stored and is lost; a new rotation is needed",
			"name", name, "access_key_id", issued.AccessKeyID, "error", err)
		failed := *prev
		failed.markFailed(lostErr.Error(), now, true, true)
		b.setOrg(name, &orgEntry{config: e.config, key: &failed})
		b.walPending.Store(true)
		b.sendEvent(ctx, eventRotateFail, name, prev.Version, trigger, lostErr.Error())
		return nil, lostErr
	}
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		// Harmless: the rollback sees that the stored version moved on.
		b.logger.Warn("could not delete the rotation WAL entry", "name", name, "error", err)
		b.walPending.Store(true)
	}
	b.setOrg(name, &orgEntry{config: e.config, key: next})
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

// recordFailure stores the failure on the organization. Ambiguous failures
// mark the key stale; scheduled ones retry with backoff.
func (b *backend) recordFailure(ctx context.Context, s logical.Storage, name string, e *orgEntry, callErr error, trigger, walID string, now time.Time) {
	failed := keyState{}
	if e.key != nil {
		failed = *e.key
	}
	ambiguous := isAmbiguous(callErr)
	failed.markFailed(callErr.Error(), now, ambiguous, trigger != triggerManual)
	if err := b.storeKey(ctx, s, name, &failed); err != nil {
		// Keep the WAL: the next tick or a restart marks the key stale again.
		b.logger.Error("could not store the rotation failure", "name", name, "error", err)
		b.walPending.Store(true)
	} else if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		b.logger.Warn("could not delete the rotation WAL entry", "name", name, "error", err)
		b.walPending.Store(true)
	}
	b.setOrg(name, &orgEntry{config: e.config, key: &failed})
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
