package backend

import "context"

// ctxMutex is a mutex whose wait ends with the caller's context: the load
// may hold it for minutes, and a tick or a read must give up at its own
// deadline rather than outlive it.
type ctxMutex struct{ ch chan struct{} }

func newCtxMutex() ctxMutex { return ctxMutex{ch: make(chan struct{}, 1)} }

// lock takes the mutex, or returns ctx's error when ctx ends first.
func (m ctxMutex) lock(ctx context.Context) error {
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m ctxMutex) unlock() { <-m.ch }
