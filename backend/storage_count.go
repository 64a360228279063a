package backend

import (
	"context"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/logical"
)

// countedStorage counts the reads that pass through it, for the log lines
// that say what a load and a tick cost.
type countedStorage struct {
	logical.Storage
	reads atomic.Int64
}

func countReads(s logical.Storage) *countedStorage { return &countedStorage{Storage: s} }

func (c *countedStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.reads.Add(1)
	return c.Storage.Get(ctx, key)
}

func (c *countedStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.reads.Add(1)
	return c.Storage.List(ctx, prefix)
}
