package orgcache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type entry struct{ v int }

func TestFillThatRacedAWriteDoesNotLand(t *testing.T) {
	c := New[entry]()
	_, gen := c.Get("acme")
	h, err := c.Lock(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	written := &entry{v: 2}
	h.Set(written)
	h.Unlock()
	if c.Fill("acme", gen, &entry{v: 1}) {
		t.Fatal("a fill that read storage before a write reported that it stands")
	}
	if e, _ := c.Get("acme"); e != written {
		t.Fatalf("cached %+v, want the written entry", e)
	}
}

func TestFillCachesAndClearsTheUnreadableNote(t *testing.T) {
	c := New[entry]()
	_, gen := c.Get("acme")
	c.NoteUnreadable("acme", gen, "not valid JSON")
	if names, _ := c.Unreadable(); len(names) != 1 {
		t.Fatalf("unreadable = %v, want acme", names)
	}
	e := &entry{v: 1}
	if !c.Fill("acme", gen, e) {
		t.Fatal("a fill with no write since reported that it does not stand")
	}
	if got, _ := c.Get("acme"); got != e {
		t.Fatal("the fill was not cached")
	}
	if names, _ := c.Unreadable(); len(names) != 0 {
		t.Fatalf("unreadable = %v after a readable fill", names)
	}
}

func TestUnreadableNoteThatRacedAWriteIsDropped(t *testing.T) {
	c := New[entry]()
	_, gen := c.Get("acme")
	h, _ := c.Lock(context.Background(), "acme")
	h.Set(&entry{})
	h.Unlock()
	c.NoteUnreadable("acme", gen, "not valid JSON")
	if names, _ := c.Unreadable(); len(names) != 0 {
		t.Fatalf("unreadable = %v: a write since the read replaced the entry", names)
	}
}

func TestRefillSettlesDroppedNamesOnce(t *testing.T) {
	c := New[entry]()
	h, _ := c.Lock(context.Background(), "acme")
	h.Set(&entry{v: 1})
	h.Unlock()
	c.Drop("acme")
	c.MarkDropped("gone")
	stored := map[string]*entry{"acme": {v: 1}}
	var reads, settled int
	read := func(name string) (*entry, error) {
		reads++
		_, gen := c.Get(name)
		e := stored[name]
		c.Fill(name, gen, e)
		return e, nil
	}
	c.Refill(read, func(string, *entry) { settled++ })
	if reads != 2 || settled != 2 {
		t.Fatalf("first refill: %d reads, %d settled; want 2 and 2", reads, settled)
	}
	c.Refill(read, func(string, *entry) { settled++ })
	if reads != 2 {
		t.Fatalf("a refill with nothing dropped read %d names", reads-2)
	}
}

func TestRefillKeepsANameDroppedDuringItsRead(t *testing.T) {
	c := New[entry]()
	c.MarkDropped("acme")
	var settled int
	c.Refill(func(name string) (*entry, error) {
		_, gen := c.Get(name)
		e := &entry{v: 1}
		c.Fill(name, gen, e)
		c.Drop(name) // an invalidate lands meanwhile
		return e, nil
	}, func(string, *entry) { settled++ })
	if settled != 0 {
		t.Fatal("a name dropped during its refill was settled")
	}
	failing := errors.New("storage down")
	c.Refill(func(string) (*entry, error) { return nil, failing }, func(string, *entry) { settled++ })
	if settled != 0 {
		t.Fatal("a failed read settled the name")
	}
	c.Refill(func(name string) (*entry, error) {
		_, gen := c.Get(name)
		e := &entry{v: 2}
		c.Fill(name, gen, e)
		return e, nil
	}, func(string, *entry) { settled++ })
	if settled != 1 {
		t.Fatal("the dropped name was not read again")
	}
}

func TestLockSerializesAName(t *testing.T) {
	c := New[entry]()
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.Lock(context.Background(), "acme")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside > 1 {
				t.Error("two holders of one name's lock")
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			h.Unlock()
		}()
	}
	wg.Wait()
}

func TestLockWaitEndsWithTheContext(t *testing.T) {
	c := New[entry]()
	h, _ := c.Lock(context.Background(), "acme")
	defer h.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(ctx, "acme"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held name past the deadline: %v, want the deadline", err)
	}
}

func TestSetNilRemovesTheEntry(t *testing.T) {
	c := New[entry]()
	h, _ := c.Lock(context.Background(), "acme")
	h.Set(&entry{})
	h.Set(nil)
	h.Unlock()
	if e, _ := c.Get("acme"); e != nil {
		t.Fatal("Set(nil) left the entry")
	}
	if len(c.Snapshot()) != 0 {
		t.Fatal("Snapshot lists a removed entry")
	}
}

func TestRangeVisitsEveryEntryAndStops(t *testing.T) {
	c := New[string]()
	for _, name := range []string{"a", "b", "c"} {
		_, gen := c.Get(name)
		v := name
		c.Fill(name, gen, &v)
	}
	seen := map[string]string{}
	c.Range(func(name string, e *string) bool { seen[name] = *e; return true })
	if len(seen) != 3 || seen["b"] != "b" {
		t.Fatalf("Range saw %v", seen)
	}
	calls := 0
	c.Range(func(string, *string) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("Range went on after false: %d calls", calls)
	}
}
