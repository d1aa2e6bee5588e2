package oldkit

import (
	"context"
	"net/http"
)

// replayReady reports whether b has a replay whose playlist answers 200.
func ReplayReady(ctx context.Context, api *RigAPI, b RigBroadcast) (bool, error) {
	if b.ReplayURL == "" {
		return false, nil
	}
	code, err := api.status(ctx, b.ReplayURL)
	return err == nil && code == http.StatusOK, err
}
