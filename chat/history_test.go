package chat

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// insertMessages stores messages of room r1 posted at the given times (several share
// one millisecond), as the hub would; the texts are m00, m01, … in that order.
func insertMessages(t *testing.T, e *env, room string, author User, at []time.Time) []messageDoc {
	t.Helper()
	docs := make([]messageDoc, len(at))
	for i, a := range at {
		docs[i] = messageDoc{ID: bson.NewObjectID(), Room: room, Kind: typeMessage, UserID: author.ID, Handle: author.Handle,
			Text: fmt.Sprintf("m%02d", i), At: a.Truncate(time.Millisecond), Node: "n1"}
		if _, err := e.db.Collection(collMessages).InsertOne(ctxT(t), docs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return docs
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	room := testRoom("r1")
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var at []time.Time
	for i := range 23 {
		at = append(at, base.Add(time.Duration(i/3)*time.Second)) // three messages per millisecond
	}
	docs := insertMessages(t, e, "r1", alice, at)
	insertMessages(t, e, "r2", bob, at[:5]) // another room's
	if err := th.DeleteMessage(ctxT(t), room, mod, docs[10].ID.Hex()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, d := range docs {
		if i != 10 {
			want = append(want, d.Text)
		}
	}

	for _, limit := range []int{1, 4, 5, 22, 500} {
		var got []string
		before, pages := "", 0
		for {
			page, err := th.HistoryBefore(ctxT(t), room, before, limit)
			if err != nil {
				t.Fatalf("limit %d, before %q: %v", limit, before, err)
			}
			if len(page.Messages) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page.Messages))
			}
			var texts []string
			for _, m := range page.Messages {
				texts = append(texts, m.Text)
			}
			got = append(texts, got...)
			if pages++; page.NextBefore == "" || pages > 30 {
				break
			}
			if page.NextBefore != page.Messages[0].ID {
				t.Fatalf("limit %d: next_before %s is not the oldest message of the page %s", limit, page.NextBefore, page.Messages[0].ID)
			}
			before = page.NextBefore
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: pages give\n%v\nwant\n%v", limit, got, want)
		}
	}

	// A deleted message still serves as a cursor, from its place.
	page, err := th.HistoryBefore(ctxT(t), room, docs[10].ID.Hex(), 2)
	if err != nil || len(page.Messages) != 2 || page.Messages[0].Text != "m08" || page.Messages[1].Text != "m09" {
		t.Fatalf("before a deleted message: %+v, %v", page, err)
	}
	for _, bad := range []string{"nope", bson.NewObjectID().Hex(), docs[0].ID.Hex() + "0"} {
		if _, err := th.HistoryBefore(ctxT(t), room, bad, 2); !errors.Is(err, ErrInvalid) {
			t.Errorf("before %q: %v, want ErrInvalid", bad, err)
		}
	}
	// Another room's message is no cursor here.
	other, err := th.HistoryBefore(ctxT(t), testRoom("r2"), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.HistoryBefore(ctxT(t), room, other.Messages[0].ID, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("another room's message as cursor: %v, want ErrInvalid", err)
	}
}

func TestReplayWindows(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	room := testRoom("r1")
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	end := time.Now().Add(time.Minute)
	sec := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	insertMessages(t, e, "r1", alice, []time.Time{sec(-5)}) // before the broadcast
	a := insertMessages(t, e, "r1", alice, []time.Time{sec(1), sec(12), sec(12), sec(12), sec(30), sec(59)})
	tr := insertMessages(t, e, "r1", troll, []time.Time{sec(13)})
	b := insertMessages(t, e, "r1", bob, []time.Time{sec(20)})
	insertMessages(t, e, "r1", alice, []time.Time{end.Add(time.Second)}) // after it
	// troll is banned during the broadcast: none of theirs show; a deleted message neither.
	if err := th.Ban(ctxT(t), room, mod, troll, "spam"); err != nil {
		t.Fatal(err)
	}
	if err := th.DeleteMessage(ctxT(t), room, mod, a[4].ID.Hex()); err != nil {
		t.Fatal(err)
	}
	q := ReplayQuery{RoomID: "r1", Start: start, End: end}
	type seen struct {
		id     string
		offset time.Duration
	}
	all := []seen{
		{a[0].ID.Hex(), time.Second}, {a[1].ID.Hex(), 12 * time.Second}, {a[2].ID.Hex(), 12 * time.Second},
		{a[3].ID.Hex(), 12 * time.Second}, {b[0].ID.Hex(), 20 * time.Second}, {a[5].ID.Hex(), 59 * time.Second},
	}
	read := func(q ReplayQuery) (out []seen) {
		t.Helper()
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatalf("%+v: no end of pages", q)
			}
			p, err := th.Replay(ctxT(t), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range p.Messages {
				out = append(out, seen{m.ID, m.Offset})
				if m.Offset != m.At.Sub(start) {
					t.Fatalf("offset %s of a message at %s", m.Offset, m.At)
				}
			}
			if !p.More {
				return out
			}
			if p.Next < q.From {
				t.Fatalf("next %s before from %s", p.Next, q.From)
			}
			q.From, q.After = p.Next, p.NextAfter
		}
	}
	for _, tc := range []struct {
		name     string
		from, to time.Duration
		limit    int
		want     []seen
	}{
		{"everything", 0, 0, 0, all},
		{"pages of 1", 0, 0, 1, all},
		{"pages of 2", 0, 0, 2, all},
		{"pages of 3", 0, 0, 3, all},
		{"from 12 s", 12 * time.Second, 0, 0, all[1:]},
		{"from 12.001 s", 12*time.Second + time.Millisecond, 0, 0, all[4:]},
		{"to 12 s", 0, 12 * time.Second, 0, all[:1]},
		{"5 to 25 s", 5 * time.Second, 25 * time.Second, 2, all[1:5]},
		{"after the end", 2 * time.Minute, 0, 0, nil},
		{"empty window", 10 * time.Second, 10 * time.Second, 0, nil},
	} {
		got := read(ReplayQuery{RoomID: q.RoomID, Start: q.Start, End: q.End, From: tc.from, To: tc.to, Limit: tc.limit})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
	// A ban after a broadcast hides nothing of it.
	early := read(ReplayQuery{RoomID: "r1", Start: start, End: sec(50), From: 13 * time.Second, To: 14 * time.Second})
	if want := []seen{{tr[0].ID.Hex(), 13 * time.Second}}; !slices.Equal(early, want) {
		t.Errorf("troll's message, banned after the broadcast: got %v, want %v", early, want)
	}
	if _, err := th.Replay(ctxT(t), ReplayQuery{RoomID: "r1", Start: start, End: end, After: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("after x: %v, want ErrInvalid", err)
	}
}
