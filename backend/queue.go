package backend

// The rotation queue: a min-heap of organizations by the time they next
// need the scheduler, indexed by name, so that an idle tick is one peek.
// It has no lock of its own: the scheduler's mu guards it.

import (
	"container/heap"
	"time"
)

type rotationQueue struct {
	heap  queueHeap
	items map[string]*queueItem
}

type queueItem struct {
	name  string
	at    time.Time
	index int
}

func newRotationQueue() rotationQueue {
	return rotationQueue{items: make(map[string]*queueItem)}
}

// set queues name at the given time, or moves it there.
func (q *rotationQueue) set(name string, at time.Time) {
	if it, ok := q.items[name]; ok {
		it.at = at
		heap.Fix(&q.heap, it.index)
		return
	}
	it := &queueItem{name: name, at: at}
	heap.Push(&q.heap, it)
	q.items[name] = it
}

func (q *rotationQueue) remove(name string) {
	if it, ok := q.items[name]; ok {
		heap.Remove(&q.heap, it.index)
		delete(q.items, name)
	}
}

// popDue removes and returns the names whose time has come.
func (q *rotationQueue) popDue(now time.Time) []string {
	var due []string
	for len(q.heap) > 0 && !q.heap[0].at.After(now) {
		it := heap.Pop(&q.heap).(*queueItem)
		delete(q.items, it.name)
		due = append(due, it.name)
	}
	return due
}

// queueHeap implements heap.Interface.
type queueHeap []*queueItem

func (h queueHeap) Len() int           { return len(h) }
func (h queueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h queueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *queueHeap) Push(x any) {
	it := x.(*queueItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *queueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
