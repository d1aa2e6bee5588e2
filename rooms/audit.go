package rooms

import (
	"context"

	"onair/rooms/audit"
)

// record tells Config.Audit of an action that took effect. room may be nil.
func (s *Service) record(ctx context.Context, actor User, action string, room *Room, target *audit.Target, details map[string]any) {
	if s.cfg.Audit == nil {
		return
	}
	e := audit.Entry{
		At: s.now(), Action: action, Target: target, Details: details,
		Actor: audit.Actor{ID: actor.ID, Handle: actor.Handle, Admin: actor.Admin},
	}
	if room != nil {
		e.Room = &audit.Room{ID: room.ID, Slug: room.Slug, Title: room.Title}
	}
	s.cfg.Audit.Record(ctx, e)
}

func userTarget(u UserRef) *audit.Target {
	return &audit.Target{Kind: audit.KindUser, ID: u.ID, Name: u.Handle}
}
