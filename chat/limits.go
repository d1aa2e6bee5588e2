package chat

import (
	"slices"
	"time"
)

// Rate limits and slow mode: what a room remembers of each user's recent posts, on this
// node and (notePost) through the others.

// userState is what rate limiting and slow mode remember of a user in a room.
type userState struct {
	posts []time.Time // accepted posts within RatePer, oldest first
	last  time.Time   // last accepted post, for slow mode
}

// dropBefore forgets the posts at or before cut: they no longer count.
func (u *userState) dropBefore(cut time.Time) {
	i := 0
	for i < len(u.posts) && !u.posts[i].After(cut) {
		i++
	}
	u.posts = slices.Delete(u.posts, 0, i)
}

// verdict is the outcome of admit: an error code and how long until a retry may succeed.
type verdict struct {
	code  string
	msg   string
	retry time.Duration
}

// reservation undoes admit's bookkeeping when the post then fails.
type reservation struct {
	user     string
	at       time.Time
	prevLast time.Time
}

// admit checks bans, timeouts, slow mode and the rate limit for a post by user at now,
// and reserves the post's place in the limits.
func (r *room) admit(user string, privileged bool, now time.Time) (verdict, reservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.bans[user]; ok {
		if b.banned {
			return verdict{code: codeBanned, msg: "you are banned from this chat"}, reservation{}
		}
		if left := b.until.Sub(now); left > 0 {
			return verdict{code: codeTimedOut, msg: "you are timed out", retry: left}, reservation{}
		}
	}
	u := r.users[user]
	if u == nil {
		u = &userState{}
		r.users[user] = u
	}
	if r.slowMode > 0 && !privileged && !u.last.IsZero() {
		if left := r.slowMode - now.Sub(u.last); left > 0 {
			return verdict{code: codeSlowMode, msg: "slow mode is on", retry: left}, reservation{}
		}
	}
	cut := now.Add(-r.h.cfg.RatePer)
	u.dropBefore(cut)
	if len(u.posts) >= r.h.cfg.RateLimit {
		return verdict{code: codeRateLimited, msg: "you are sending messages too fast", retry: u.posts[0].Sub(cut)}, reservation{}
	}
	res := reservation{user: user, at: now, prevLast: u.last}
	u.posts = append(u.posts, now)
	u.last = now
	return verdict{}, res
}

// notePost counts a post that user made through another node at `at` (its clock; now if
// that is ahead of ours) in this node's rate limit and slow mode.
func (r *room) notePost(user string, at, now time.Time) {
	if at.IsZero() || at.After(now) {
		at = now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(at) >= max(r.h.cfg.RatePer, r.slowMode) {
		return // too old to matter
	}
	u := r.users[user]
	if u == nil {
		u = &userState{}
		r.users[user] = u
	}
	// Posts out of the window go here too, or a user who posts only elsewhere would pile
	// them up.
	cut := now.Add(-r.h.cfg.RatePer)
	u.dropBefore(cut)
	if at.After(cut) {
		i, _ := slices.BinarySearchFunc(u.posts, at, func(p, t time.Time) int { return p.Compare(t) })
		u.posts = slices.Insert(u.posts, i, at)
	}
	if at.After(u.last) {
		u.last = at
	}
}

// unreserve undoes admit for a post that was not stored.
func (r *room) unreserve(res reservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[res.user]
	if u == nil {
		return
	}
	if i := slices.Index(u.posts, res.at); i >= 0 {
		u.posts = slices.Delete(u.posts, i, i+1)
	}
	if u.last.Equal(res.at) {
		u.last = res.prevLast
	}
}
