package backend

// The rotation WAL: an entry written before each Cisco call and deleted
// once its outcome is stored. An entry that no running rotation owns means
// the outcome is unknown.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
)

const walKindRotate = "rotate"

// rotationWAL marks a rotation in flight. Found after a crash, it means the
// outcome is unknown.
type rotationWAL struct {
	Name string `json:"name"`
	// Version is the key version before the rotation: a stored version above
	// it means the rotation finished.
	Version int `json:"version"`
	// PrevAccessKeyID is the key id served when the rotation started (empty
	// if none): a stored key with another id was stored after it, even when
	// a delete restarted the versions.
	PrevAccessKeyID string    `json:"prev_access_key_id,omitempty"`
	Started         time.Time `json:"started"`
}

// settledBy reports whether stored, the key in storage now, settles w, the
// rotation whose WAL entry has the given id.
func (w *rotationWAL) settledBy(id string, stored *keyState) bool {
	return bucketkey.SettlesRotation(stored, id, w.Version, w.PrevAccessKeyID)
}

// putRotationWAL records that a rotation of name's key prev starts now.
func putRotationWAL(ctx context.Context, s logical.Storage, name string, prev *keyState, now time.Time) (string, error) {
	w := &rotationWAL{Name: name, Started: now}
	if prev != nil {
		w.Version, w.PrevAccessKeyID = prev.Version(), prev.AccessKeyID()
	}
	id, err := framework.PutWAL(ctx, s, walKindRotate, w)
	if err != nil {
		return "", fmt.Errorf("writing the rotation WAL failed, Cisco was not called: %w", err)
	}
	return id, nil
}

// deleteRotationWAL deletes a settled rotation's entry. On failure the
// next tick looks at the WAL again.
func (b *backend) deleteRotationWAL(ctx context.Context, s logical.Storage, name, id string) {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		b.logger.Warn("could not delete the rotation WAL entry", "name", name, "error", err)
		b.walPending.Store(true)
	}
}

// recoverOrphanedRotations resolves WAL entries that no running rotation
// owns: the outcome of those rotations is unknown, so their keys are marked
// stale and rotated as soon as possible. The framework's own rollback would
// list wal/ on every tick; running this at load, and on the tick after a
// rotation left its entry behind (walPending), keeps an idle tick free of
// storage reads.
func (b *backend) recoverOrphanedRotations(ctx context.Context, s logical.Storage) error {
	return b.forEachRotationWAL(ctx, s, func(id string, data interface{}) error {
		settled, err := b.settleOrphanedRotation(ctx, s, id, data)
		var bad *unreadableEntryError
		if errors.As(err, &bad) {
			// Kept for when the organization is readable again, which the
			// next tick looks at; a delete removes it with the organization.
			b.walPending.Store(true)
			return nil
		}
		if err != nil {
			return err
		}
		if !settled {
			// Its rotation is still running; look again on the next tick.
			b.walPending.Store(true)
			return nil
		}
		return deleteWALEntry(ctx, s, id)
	})
}

// forEachRotationWAL calls fn with the id and data of every rotation WAL
// entry. An entry that does not decode is logged and skipped: one bad entry
// must not stop the mount.
func (b *backend) forEachRotationWAL(ctx context.Context, s logical.Storage, fn func(id string, data interface{}) error) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return fmt.Errorf("listing the rotation WAL: %w", err)
	}
	for _, id := range ids {
		// framework.GetWAL cannot tell a storage failure, which must stop
		// the walk, from an entry that does not decode, which is skipped.
		raw, err := s.Get(ctx, framework.WALPrefix+id)
		if err != nil {
			return fmt.Errorf("reading the rotation WAL: %w", err)
		}
		if raw == nil {
			continue
		}
		var entry framework.WALEntry
		if err := raw.DecodeJSON(&entry); err != nil {
			b.logger.Error("skipping a WAL entry that cannot be decoded", "entry", framework.WALPrefix+id)
			continue
		}
		if entry.Kind != walKindRotate {
			continue
		}
		if err := fn(id, entry.Data); err != nil {
			return err
		}
	}
	return nil
}

func deleteWALEntry(ctx context.Context, s logical.Storage, id string) error {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		return fmt.Errorf("deleting the rotation WAL: %w", err)
	}
	return nil
}

// settleOrphanedRotation handles one rotation WAL entry. It reports false
// when the entry must stay: a rotation of that name is running, and the
// entry may be its own.
func (b *backend) settleOrphanedRotation(ctx context.Context, s logical.Storage, id string, data interface{}) (bool, error) {
	var w rotationWAL
	if err := mapToStruct(data, &w); err != nil || w.Name == "" {
		b.logger.Warn("dropping an unreadable rotation WAL entry")
		return true, nil
	}
	b.inflightMu.Lock()
	_, running := b.inflight[w.Name]
	b.inflightMu.Unlock()
	if running {
		return false, nil
	}
	// Called while the WAL settles, so it takes the lock without lockOrg.
	o, err := b.lockName(ctx, s, w.Name)
	if err != nil {
		return false, err
	}
	defer o.unlock()
	e, err := b.org(ctx, s, w.Name)
	if err != nil {
		return false, err
	}
	o.e = e
	if e == nil {
		return true, nil // deleted since
	}
	// Only storage says whether the outcome is settled: the cache may hold
	// a failure that storage refused, and a restart would not see it.
	stored, err := getKey(ctx, s, w.Name)
	if err != nil {
		return false, err
	}
	if w.settledBy(id, stored) {
		return true, nil
	}
	if _, _, err := o.step(ctx, bucketkey.WALFound{ID: id, Started: w.Started}, triggerRecovery); err != nil {
		// The cache still takes the mark, so reads say stale and the tick
		// recovers; the entry stays for a restart, and this walk goes on.
		b.logger.Error("could not store the stale mark of an unfinished rotation; keeping its WAL entry",
			"name", w.Name, "error", err)
		return false, nil
	}
	return true, nil
}

// deleteRotationWALsOf deletes the WAL entries of a deleted organization,
// so that one re-created under its name does not inherit them.
func (b *backend) deleteRotationWALsOf(ctx context.Context, s logical.Storage, name string) error {
	return b.forEachRotationWAL(ctx, s, func(id string, data interface{}) error {
		var w rotationWAL
		if mapToStruct(data, &w) != nil || w.Name != name {
			return nil
		}
		return deleteWALEntry(ctx, s, id)
	})
}

// mapToStruct decodes a WAL entry's data, which arrives as a generic map.
func mapToStruct(in interface{}, out interface{}) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
