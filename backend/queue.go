package backend

import (
	"container/heap"
	"time"
)

type queueItem struct {
	name  string
	at    time.Time
	index int
}

type rotationQueue []*queueItem

func (q rotationQueue) Len() int { return len(q) }

func (q rotationQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }

func (q rotationQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *rotationQueue) Push(x any) {
	it := x.(*queueItem)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *rotationQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

// nextAction is when an organization next needs the scheduler: a rotation
// or a deadline log line.
func (s *scheduler) nextAction(name string, e *orgEntry, now time.Time) (time.Time, bool) {
	at, ok := nextRotation(e.config, e.key, now)
	if k := e.key; k.hasKey() {
		warnAt := k.expiresAt().Add(-deadlineWarning)
		if last, warned := s.warned[name]; warned && !last.Before(warnAt) {
			warnAt = last.Add(warnEvery)
		}
		if !ok || warnAt.Before(at) {
			at, ok = warnAt, true
		}
	}
	return at, ok
}

// update reschedules one organization from its cached entry.
func (s *scheduler) update(name string, e *orgEntry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.nextAction(name, e, now)
	it, queued := s.items[name]
	switch {
	case !ok && queued:
		heap.Remove(&s.queue, it.index)
		delete(s.items, name)
	case !ok:
	case queued:
		it.at = at
		heap.Fix(&s.queue, it.index)
	default:
		it = &queueItem{name: name, at: at}
		heap.Push(&s.queue, it)
		s.items[name] = it
	}
}

func (s *scheduler) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[name]; ok {
		heap.Remove(&s.queue, it.index)
		delete(s.items, name)
	}
	delete(s.warned, name)
}

func (s *scheduler) reset() {
	s.mu.Lock()
	s.queue = nil
	s.items = make(map[string]*queueItem)
	s.warned = make(map[string]time.Time)
	s.mu.Unlock()
}

// nextDue returns the earliest queued time, for tests and status.
func (s *scheduler) nextDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return time.Time{}, false
	}
	return s.queue[0].at, true
}

// popDue removes and returns the organizations whose time has come.
func (s *scheduler) popDue(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []string
	for len(s.queue) > 0 && !s.queue[0].at.After(now) {
		it := heap.Pop(&s.queue).(*queueItem)
		delete(s.items, it.name)
		due = append(due, it.name)
	}
	return due
}
