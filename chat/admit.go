package chat

import (
	"context"
	"time"
)

// Who may be in a room is decided outside chat (Config.Admit; rooms wires it): a viewer
// whose invitation to a private room is revoked, or anyone uninvited in a room made
// private, must not go on reading its chat. Sockets are admitted when they join; every
// AdmitInterval, and when Recheck asks, each node asks again for the users of its own
// sockets, in batches, and closes those no longer admitted. While the answer cannot be
// had (MongoDB away) sockets stay: they were admitted, and the next pass decides.

// Seat is a socket's user in a room, for Config.Admit; UserID "" is an anonymous reader.
type Seat struct {
	RoomID string
	UserID string
	Admin  bool
}

// CloseAccessRevoked is the close code of a socket whose user may no longer be in the
// room (an application code: clients show why and do not reconnect).
const CloseAccessRevoked = 4403

// admitBatch bounds the seats of one Config.Admit call.
const admitBatch = 1000

// Recheck asks for an admission pass of this node's sockets now (after an owner revoked
// an invitation or made a room private, on this node); other nodes catch up within
// AdmitInterval.
func (h *Hub) Recheck() {
	select {
	case h.recheck <- struct{}{}:
	default: // one is pending already
	}
}

func (h *Hub) admissions(ctx context.Context) {
	if h.cfg.Admit == nil {
		return
	}
	tick := time.NewTicker(h.cfg.AdmitInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-h.recheck:
		}
		h.admitPass(ctx)
	}
}

// admitPass asks Config.Admit about every distinct room and user of this node's sockets
// and closes the sockets of those it refuses.
func (h *Hub) admitPass(ctx context.Context) {
	type member struct {
		c    *conn
		seat int
	}
	var (
		seats   []Seat
		index   = map[Seat]int{}
		members []member
	)
	for _, r := range h.roomList() {
		r.mu.Lock()
		for _, c := range r.subs {
			st := Seat{RoomID: r.id}
			if c.user != nil {
				st.UserID, st.Admin = c.user.ID, c.user.Admin
			}
			i, ok := index[st]
			if !ok {
				i = len(seats)
				index[st] = i
				seats = append(seats, st)
			}
			members = append(members, member{c, i})
		}
		r.mu.Unlock()
	}
	admitted := make([]bool, 0, len(seats))
	for start := 0; start < len(seats); start += admitBatch {
		batch := seats[start:min(start+admitBatch, len(seats))]
		octx, cancel := h.opContext(ctx)
		ok, err := h.cfg.Admit(octx, batch)
		cancel()
		if err != nil || len(ok) != len(batch) {
			h.log.Debug("chat: admissions not checked", "seats", len(seats), "err", err)
			return
		}
		admitted = append(admitted, ok...)
	}
	closed := 0
	for _, m := range members {
		if !admitted[m.seat] && m.c.shutdown(CloseAccessRevoked, "you may no longer be in this room") {
			closed++
		}
	}
	if closed > 0 {
		h.log.Info("chat: sockets closed: access revoked", "sockets", closed)
	}
}
