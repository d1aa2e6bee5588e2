package chat

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// What chat does only because of FerretDB, the MongoDB-compatible server that `make run`
// embeds and the tests use, is here. Elsewhere chat does what MongoDB 7 needs, and a few
// things FerretDB needs that are harmless on MongoDB, said where they are done: the event
// log in a database of its own (Config.EventDB), a tail that opens its cursor with a
// batch of one and a filter matching a marker document it inserted (events.go), one
// opaque field per event document (eventDoc), one writer per collection (writer.go).

// ferretEventLogDocs bounds the event log on FerretDB, in documents (batches of about
// eventLinger): FerretDB's tailable cursors rescan the whole collection every 10 ms, so
// their cost grows with it. 24 hold a second or two of busy chat. On MongoDB a cursor
// costs nothing while it waits, and a longer log lets a node that lost its connection
// for a while catch up rather than reload its rooms.
const ferretEventLogDocs = 24

// defaultEventLogDocs is the document bound of a new event log when Config sets none:
// ferretEventLogDocs on FerretDB, none on MongoDB.
func (h *Hub) defaultEventLogDocs(ctx context.Context) int64 {
	var info bson.M
	err := h.eventDB.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
	if _, ferret := info["ferretdbVersion"]; err == nil && ferret {
		return ferretEventLogDocs
	}
	return 0
}
