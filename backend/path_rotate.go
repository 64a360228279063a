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

const (
	walKindRotate = "rotate"
	storeAttempts = 4
)

// rotationWAL marks a rotation in flight. Found after a crash, it means the
// outcome is unknown.
type rotationWAL struct {
	Name string `json:"name"`
	// Version is the key version before the rotation: a stored version above
	// it means the rotation finished.
	Version int       `json:"version"`
	Started time.Time `json:"started"`
}

// rotationCall lets concurrent rotate requests share one Cisco call.
type rotationCall struct {
	done chan struct{}
	key  *keyState
	err  error
}

// errNotConfigured is a caller mistake.
var errNotConfigured = errors.New("not configured")

func pathRotate(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "rotate/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the organization.",
				Required:    true,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRotateWrite,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "rotate"},
			},
		},
		HelpSynopsis:    pathRotateHelpSyn,
		HelpDescription: pathRotateHelpDesc,
	}}
}

func (b *backend) pathRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.ensureLoaded(ctx, req.Storage); err != nil {
		return nil, err
	}
	name := d.Get("name").(string)
	k, err := b.rotate(ctx, req.Storage, name, triggerManual)
	if err != nil {
		return rotateErrorResponse(name, err)
	}
	return keyResponse(k), nil
}

// keyResponse describes a newly stored key, without its secret.
func keyResponse(k *keyState) *logical.Response {
	return &logical.Response{Data: map[string]interface{}{
		"access_key_id":       k.AccessKeyID,
		"old_access_key_id":   k.OldAccessKeyID,
		"key_creation_date":   formatTime(k.KeyCreationDate),
		"version":             k.Version,
		"last_vault_rotation": formatTime(k.LastVaultRotation),
	}}
}

// rotateErrorResponse maps a rotation error: caller mistakes are 400s,
// Cisco's failures 502s, our own 500s.
func rotateErrorResponse(name string, err error) (*logical.Response, error) {
	var ce *ciscoError
	var lost *lostKeyError
	var limited *rateLimitedError
	switch {
	case errors.As(err, &limited):
		return nil, logical.CodedError(http.StatusTooManyRequests, "rotation not started: "+err.Error())
	case errors.Is(err, errAPIKeyBusy):
		return nil, logical.CodedError(http.StatusServiceUnavailable, "rotation not started: "+err.Error())
	case errors.Is(err, errNotConfigured):
		return logical.ErrorResponse("no organization %q is configured: write config/%s first", name, name), nil
	case errors.As(err, &ce) && ce.NotEnabled:
		return logical.ErrorResponse("rotation failed: %s", err), nil
	case errors.As(err, &ce):
		return nil, logical.CodedError(http.StatusBadGateway, "rotation failed: "+err.Error())
	case errors.As(err, &lost):
		return nil, err
	case errors.Is(err, logical.ErrReadOnly):
		return nil, err
	}
	return nil, fmt.Errorf("rotation failed: %w", err)
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

// storeKey writes the key, retrying a few times: the key exists only in
// memory until it lands.
func (b *backend) storeKey(ctx context.Context, s logical.Storage, name string, k *keyState) error {
	var err error
	for attempt := 0; attempt < storeAttempts; attempt++ {
		if attempt > 0 {
			if sleepCtx(ctx, time.Duration(attempt)*100*time.Millisecond) != nil {
				break
			}
		}
		if err = putJSON(ctx, s, keyPrefix+name, k); err == nil {
			return nil
		}
	}
	return err
}

// markFailed records a failed rotation. retry schedules the next attempt
// with backoff; stale marks the served key as possibly dead.
func (k *keyState) markFailed(msg string, now time.Time, stale, retry bool) {
	k.LastError = msg
	k.LastErrorTime = now
	k.ConsecutiveFailures++
	if stale {
		k.Stale = true
	}
	if retry || k.Stale {
		k.RetryAt = now.Add(retryBackoff(k.ConsecutiveFailures)).Truncate(time.Second)
	}
}

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

const pathRotateHelpSyn = "Rotate an organization's S3 bucket key now."

const pathRotateHelpDesc = `
Calls Cisco's "Refresh S3 Bucket Key" API, stores the new key and returns its
id and version. The secret is never returned here: read it from creds/<name>.
Concurrent requests for one organization share a single Cisco call.

Cisco answers "Not found IAM key info" until the first rotation of an
organization has been done once in Cisco's dashboard.

Example:

  $ vault write -f cisco-s3/rotate/acme
`
