package backend

// Checking the served key: one check recorded on the key, and the probe
// of every rotated key until AWS accepts it. AWS takes some seconds to
// accept a new key everywhere, so a rotated key is probed with backoff
// instead of once.

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Triggers of a key check, reported in metrics and logs.
const (
	checkImport    = "import"
	checkRotation  = "rotation"
	checkRecovery  = "recovery"
	checkVerify    = "verify"
	checkScheduled = "scheduled"
)

// checkTriggers are all of them, for the metric's help.
var checkTriggers = []string{checkImport, checkRotation, checkRecovery, checkVerify, checkScheduled}

const (
	// keyProbeWindow is how long a rotated key is probed at most.
	keyProbeWindow = 2 * time.Minute
	// keyProbeFirstWait is the wait before the first probe; it doubles
	// up to keyProbeMaxWait.
	keyProbeFirstWait = time.Second
	keyProbeMaxWait   = 30 * time.Second
)

// checkKey checks k with the organization's STS endpoint and counts it.
func (b *backend) checkKey(ctx context.Context, cfg *orgConfig, k *keyState, trigger string) stscheck.Result {
	return b.checkPair(ctx, cfg, k.AccessKeyID(), k.SecretAccessKey(), trigger)
}

// checkPair checks a key pair with the organization's STS endpoint and
// counts it.
func (b *backend) checkPair(ctx context.Context, cfg *orgConfig, id, secret, trigger string) stscheck.Result {
	r := b.checker.Check(ctx, cfg.stsURL(), cfg.stsRegion(), id, secret)
	b.metrics.keyChecks.WithLabelValues(trigger, string(r.Outcome)).Inc()
	return r
}

// keyProbes runs the background checks of keys: at most one per slot.
type keyProbes struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[probeSlot]context.CancelFunc
	stopped bool // set by stop: no probe starts after it

	// window and firstWait are keyProbeWindow and keyProbeFirstWait;
	// tests shorten them.
	window, firstWait time.Duration
}

func newKeyProbes() *keyProbes {
	ctx, cancel := context.WithCancel(context.Background())
	return &keyProbes{ctx: ctx, cancel: cancel, running: make(map[probeSlot]context.CancelFunc),
		window: keyProbeWindow, firstWait: keyProbeFirstWait}
}

// stop ends every probe and waits for them, when the mount goes away.
func (p *keyProbes) stop() {
	p.mu.Lock()
	p.stopped = true
	p.cancel()
	p.mu.Unlock()
	p.wg.Wait()
}

// probeSlot is where a background check runs: a name's probe of a
// rotated key, or its scheduled check. A scheduled check, started by the
// tick from what it read before a rotation, must not end the probe of the
// key that rotation stored.
type probeSlot struct {
	name      string
	scheduled bool
}

// start runs fn in the background in slot. With replace, it ends the one
// before in the slot; without, it starts nothing while the slot is busy.
// done closes when fn returns; started is false when fn was not started.
func (p *keyProbes) start(slot probeSlot, replace bool, fn func(ctx context.Context)) (done <-chan struct{}, started bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		// A rotation that ends while the mount goes away: a WaitGroup
		// must not grow while stop waits on it.
		return nil, false
	}
	if cancel := p.running[slot]; cancel != nil {
		if !replace {
			return nil, false
		}
		cancel()
	}
	ctx, cancel := context.WithCancel(p.ctx)
	p.running[slot] = cancel
	p.wg.Add(1)
	finished := make(chan struct{})
	go func() {
		defer p.wg.Done()
		defer close(finished)
		defer cancel()
		fn(ctx)
		p.mu.Lock()
		if p.ctx.Err() == nil && ctx.Err() == nil {
			delete(p.running, slot)
		}
		p.mu.Unlock()
	}()
	return finished, true
}

// probeRotatedKey checks a rotated key in the background until AWS
// accepts it or the window ends, and records the outcome on the key. The
// rotation never waits for it.
func (b *backend) probeRotatedKey(s logical.Storage, name string, cfg *orgConfig, k *keyState) {
	if cfg.DisableKeyCheck {
		return
	}
	b.probes.start(probeSlot{name: name}, true, func(ctx context.Context) {
		deadline := time.Now().Add(b.probes.window)
		wait := b.probes.firstWait
		var r stscheck.Result
		for {
			if time.Now().Add(wait).After(deadline) {
				wait = time.Until(deadline)
			}
			if sleepCtx(ctx, wait) != nil {
				return
			}
			if cfg = b.probeConfig(name, k); cfg == nil {
				return
			}
			r = b.checkKey(ctx, cfg, k, checkRotation)
			if ctx.Err() != nil {
				return
			}
			if r.Outcome == stscheck.Valid || !time.Now().Before(deadline) {
				break
			}
			if wait *= 2; wait > keyProbeMaxWait {
				wait = keyProbeMaxWait
			}
		}
		if r.Outcome == stscheck.Valid {
			b.logger.Info("AWS accepts the rotated key", "name", name, "access_key_id", k.AccessKeyID(), "account", r.Account)
		} else {
			b.logger.Error(bucketkey.LogKeyMayBeDead+": AWS has not accepted the rotated key within the probe window; consumers may hold a key that does not work",
				"name", name, "access_key_id", k.AccessKeyID(), "window", b.probes.window.String(), "result", r.String())
		}
		b.recordProbe(ctx, s, name, k, r)
	})
}

// probeConfig is the config a background check of k uses now, or nil
// when the check must stop: k is no longer served, the organization is
// gone, or key_check was turned off.
func (b *backend) probeConfig(name string, k *keyState) *orgConfig {
	e, _ := b.cached(name)
	if e == nil || !e.key.Is(k) || e.config.DisableKeyCheck {
		return nil
	}
	return e.config
}

// recordProbe records a probe's outcome under the name's lock.
func (b *backend) recordProbe(ctx context.Context, s logical.Storage, name string, k *keyState, r stscheck.Result) {
	b.afterCheck(ctx, s, name, "record the key check", func(o *lockedOrg) {
		if o.e == nil {
			return
		}
		if _, _, err := o.step(ctx, bucketkey.Probed{Of: k, Result: r}, checkRotation); err != nil {
			b.logger.Warn("could not store the key check's result", "name", name, "error", err)
		}
	})
}
