package web

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAsyncAPICoversChatDoc: every frame type that chat/doc.go, the protocol's reference,
// shows is a message of the AsyncAPI document, by name or in a message's summary (the
// user_* frames share one), and a batch's events are the live frames.
func TestAsyncAPICoversChatDoc(t *testing.T) {
	ref, err := os.ReadFile("../chat/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range regexp.MustCompile(`\{"type":"([a-z_]+)"`).FindAllSubmatch(ref, -1) {
		if s := string(m[1]); !slices.Contains(types, s) {
			types = append(types, s)
		}
	}
	if !slices.Contains(types, "batch") || len(types) < 10 {
		t.Fatalf("frame types read from chat/doc.go: %v", types)
	}

	b, err := asyncAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Messages map[string]struct {
				Name    string         `json:"name"`
				Summary string         `json:"summary"`
				Payload map[string]any `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
		Operations struct {
			Receive struct {
				Messages []map[string]string `json:"messages"`
			} `json:"receive"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	words := regexp.MustCompile(`[a-z_]+`)
	for _, typ := range types {
		found := false
		for _, m := range doc.Components.Messages {
			if m.Name == typ || slices.Contains(words.FindAllString(m.Summary, -1), typ) {
				found = true
			}
		}
		if !found {
			t.Errorf("frame type %q of chat/doc.go is not in the AsyncAPI document", typ)
		}
	}

	received := false
	for _, r := range doc.Operations.Receive.Messages {
		received = received || strings.HasSuffix(r["$ref"], "/batch")
	}
	if !received {
		t.Error("the batch frame is not among the messages a client receives")
	}
	events, _ := doc.Components.Messages["batch"].Payload["properties"].(map[string]any)["events"].(map[string]any)
	items, _ := events["items"].(map[string]any)
	if oneOf, _ := items["oneOf"].([]any); len(oneOf) != 5 {
		t.Errorf("a batch's events: %v, want one of the five live frames", events)
	}
}
