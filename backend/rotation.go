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

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/cisco"
)

// rotationCall lets concurrent rotate requests share one Cisco call.
type rotationCall struct {
	done chan struct{}
	key  *keyState
	err  error
}

// errNotDue means a scheduled or recovery rotation found, under the name's
// lock, that the key is no longer due: another rotation landed first, or a
// check showed that the stale key works.
var errNotDue = errors.New("the key is no longer due")

// rotate rotates one organization's key. Concurrent calls for the same
// name share one Cisco call and its result. ctx bounds only the wait to
// start: a started rotation finishes and persists even if its caller
// leaves.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name, trigger string) (*keyState, error) {
	// Load first: loading settles orphaned WAL entries, and one of this
	// name must not be mistaken for this rotation's own.
	if err := b.ensureLoaded(ctx, s); err != nil {
		return nil, err
	}
	for {
		b.inflightMu.Lock()
		c, ok := b.inflight[name]
		if !ok {
			break
		}
		b.inflightMu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// A request to rotate is not served by a scheduled call that found
		// nothing to do.
		if trigger == triggerManual && errors.Is(c.err, errNotDue) {
			continue
		}
		return c.key, c.err
	}
	c := &rotationCall{done: make(chan struct{})}
	b.inflight[name] = c
	b.inflightMu.Unlock()

	c.key, c.err = b.runRotation(ctx, s, name, trigger)

	b.inflightMu.Lock()
	delete(b.inflight, name)
	b.inflightMu.Unlock()
	close(c.done)
	return c.key, c.err
}

// runRotation takes the name's lock, calls Cisco once and stores the
// outcome, with a WAL entry around the call.
func (b *backend) runRotation(ctx context.Context, s logical.Storage, name, trigger string) (*keyState, error) {
	var staleChecked *staleCheck
	if trigger == triggerRecovery {
		staleChecked = b.checkStaleKey(ctx, name)
	}
	o, err := b.lockOrg(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer o.unlock()
	if o.e == nil {
		return nil, errNotConfigured
	}
	// What made the tick call this was read before the lock, from the
	// cache: a manual rotation may have landed since, or another instance
	// on the same storage (a plugin reload) may have stored a newer key.
	if trigger != triggerManual {
		if err := o.adoptNewerStoredKey(ctx); err != nil {
			return nil, err
		}
		if at, ok := bucketkey.NextRotation(o.e.key, o.e.config.facts(), b.now()); !ok || at.After(b.now()) {
			return nil, errNotDue
		}
	}
	if trigger == triggerHeal {
		if other := b.sharingCiscoOrg(name, o.e.config); other != "" {
			ev := bucketkey.HealBlocked{Other: other, Reason: sharedOrgMessage(other)}
			if _, _, err := o.step(ctx, ev, trigger); err != nil {
				b.logger.Warn("could not store why the heal is blocked", "name", name, "error", err)
			}
			return nil, errNotDue
		}
	}
	e := o.e
	if !b.writeSafe() {
		o.recordFailure(ctx, logical.ErrReadOnly, trigger, "")
		return nil, logical.ErrReadOnly
	}
	if trigger == triggerRecovery {
		checked, rotate, err := o.useStaleCheck(ctx, staleChecked)
		if err != nil {
			o.recordFailure(ctx, err, trigger, "")
			return nil, err
		}
		if !rotate {
			// Not a rotation: a manual request that joined this call runs
			// its own.
			return checked, errNotDue
		}
		if checked != nil {
			trigger = triggerScheduled // the schedule rotates the lifted key
		}
		e = o.e
	}
	release, err := b.limiter.Acquire(ctx, e.config.apiKey())
	if err != nil {
		// Cisco's rate limit or the caller's deadline only postpone; a busy
		// API key is a failed attempt.
		if errors.Is(err, cisco.ErrAPIKeyBusy) {
			o.recordFailure(ctx, err, trigger, "")
		}
		return nil, err
	}
	defer release()

	// From here on the rotation runs to its end whatever ctx does: a Cisco
	// call cut short is a lost secret.
	ctx = context.WithoutCancel(ctx)
	walID, err := putRotationWAL(ctx, s, name, e.key, b.now())
	if err != nil {
		o.recordFailure(ctx, err, trigger, "")
		return nil, err
	}
	issued, callErr := b.client(name, e.config).RotateKey(ctx)
	now := b.now()
	if callErr != nil {
		var ce *cisco.Error
		if errors.As(callErr, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden) {
			b.resetClient(name)
		}
		o.recordFailure(ctx, callErr, trigger, walID)
		return nil, callErr
	}
	if issued.CreationDateMissing {
		b.logger.Warn("Cisco's reply had no readable keyCreationDate; using the time of the reply", "name", name, "access_key_id", issued.AccessKeyID)
	} else if !bucketkey.DatesAgree(issued.CreationDate, now) {
		b.logger.Warn("Cisco's keyCreationDate is far from the time of the rotation; the key's age counts from the rotation",
			"name", name, "access_key_id", issued.AccessKeyID, "key_creation_date", issued.CreationDate.Format(time.RFC3339),
			"rotated_at", now.Format(time.RFC3339))
	}
	prev := o.e.key
	next, eff := bucketkey.Step(prev, bucketkey.Rotated{Issued: *issued, WALID: walID, Trigger: trigger}, e.config.facts(), now)
	if err := o.putKey(ctx, next); err != nil {
		return nil, o.storeLostKey(ctx, issued.AccessKeyID, err, trigger, walID, now)
	}
	b.deleteRotationWAL(ctx, s, name, walID)
	o.setKey(next)
	o.emit(ctx, next, eff, trigger)
	if eff.Probe {
		b.probeRotatedKey(s, name, e.config, next)
	}
	return next, nil
}

// storeLostKey records that Cisco replaced the key and the new one could
// not be stored: the served key is dead. The stale mark is stored if
// storage takes it; else the WAL entry stays, so a restart sees it too.
func (o *lockedOrg) storeLostKey(ctx context.Context, lostID string, cause error, trigger, walID string, now time.Time) error {
	lostErr := &lostKeyError{name: o.name, accessKeyID: lostID, cause: cause}
	ev := bucketkey.Lost{IssuedID: lostID, Message: lostErr.Error(), Cause: cause.Error(), WALID: walID, Trigger: trigger, Jitter: jitter()}
	// Dated at Cisco's reply, not after the tries to store the key.
	if _, _, err := o.stepAt(ctx, ev, trigger, now); err != nil {
		o.b.walPending.Store(true)
	} else {
		o.b.deleteRotationWAL(ctx, o.s, o.name, walID)
	}
	return lostErr
}

// lostKeyError means Cisco issued a key that could not be stored.
type lostKeyError struct {
	name, accessKeyID string
	cause             error
}

func (e *lostKeyError) Error() string {
	return fmt.Sprintf("Cisco issued key %s but storing it failed (%v): that key is lost and the previous one is "+
		"likely dead", e.accessKeyID, e.cause)
}

func (e *lostKeyError) Unwrap() error { return e.cause }

// recordFailure records and logs a failed attempt on the organization.
// Ambiguous failures mark the key stale; scheduled ones retry with
// backoff. walID is the attempt's WAL entry, empty when the attempt ended
// before Cisco was called.
func (o *lockedOrg) recordFailure(ctx context.Context, callErr error, trigger, walID string) {
	b, s, name := o.b, o.s, o.name
	ctx = context.WithoutCancel(ctx)
	ev := bucketkey.Failed{Message: callErr.Error(), Ambiguous: cisco.IsAmbiguous(callErr), Trigger: trigger, WALID: walID, Jitter: jitter()}
	if _, _, err := o.step(ctx, ev, trigger); err != nil {
		// Keep the WAL: the next tick or a restart settles it again.
		b.logger.Error("could not store the rotation failure", "name", name, "error", err)
		if walID != "" {
			b.walPending.Store(true)
		}
	} else if walID != "" {
		b.deleteRotationWAL(ctx, s, name, walID)
	}
}

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
