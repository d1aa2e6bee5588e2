package main

import (
	"errors"
	"fmt"
	"testing"

	"onair/media"
	"onair/rooms"
)

// rooms and media name a stream key by the same fingerprint in their logs.
func TestKeyIDsAgree(t *testing.T) {
	for _, key := range []string{"", "k", "a-stream-key-of-forty-characters-or-more"} {
		if r, m := rooms.KeyID(key), media.KeyID(key); r != m {
			t.Errorf("key %q: rooms says %s, media %s", key, r, m)
		}
	}
}

// rooms' stream errors reach the hub as media's, in the same words.
func TestRoomErrorsAsMedia(t *testing.T) {
	for _, tc := range []struct {
		ours, theirs error
	}{
		{rooms.ErrUnknownKey, media.ErrUnknownKey},
		{rooms.ErrStreamBusy, media.ErrStreamBusy},
		{rooms.ErrStopped, media.ErrStopped},
	} {
		if tc.ours.Error() != tc.theirs.Error() {
			t.Errorf("rooms says %q where media says %q", tc.ours, tc.theirs)
		}
		err := fmt.Errorf("%w: details", tc.ours)
		got := mediaError(err, tc.ours, tc.theirs)
		if !errors.Is(got, tc.theirs) || !errors.Is(got, tc.ours) || got.Error() != err.Error() {
			t.Errorf("%v as media's: %v (is %v: %t)", err, got, tc.theirs, errors.Is(got, tc.theirs))
		}
	}
	other := errors.New("database unavailable")
	if got := mediaError(other, rooms.ErrUnknownKey, media.ErrUnknownKey); got != other {
		t.Errorf("an unrelated error became %v", got)
	}
}
