package web

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The OpenAPI document and the router agree both ways: every pattern the router serves is
// documented, every documented operation reaches a handler. The same check fails for a
// route added to the router without documentation, and for a documented route that
// nothing serves.
func TestOpenAPICoversTheRouter(t *testing.T) {
	e := newEventsEnv(t)
	s := e.web
	code, body := getBody(t, e.srv.URL+"/api/v1/openapi.json")
	if code != 200 {
		t.Fatalf("openapi.json: %d", code)
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) < 40 || doc.Components.Schemas["RoomView"] == nil {
		t.Fatalf("document: openapi %q, %d paths, schemas %v", doc.OpenAPI, len(doc.Paths), len(doc.Components.Schemas))
	}
	create := doc.Paths["/api/v1/rooms"]["post"]
	if create["x-onair-scope"] != "rooms:write" || create["operationId"] != "createRoom" || create["requestBody"] == nil {
		t.Errorf("POST /api/v1/rooms documented as %v", create)
	}
	if sec, _ := json.Marshal(doc.Paths["/api/v1/tokens"]["post"]["security"]); strings.Contains(string(sec), "token") {
		t.Errorf("token creation accepts API tokens: %s", sec)
	}

	ids := map[string]string{}
	for path, methods := range doc.Paths {
		for m, op := range methods {
			id, _ := op["operationId"].(string)
			if other, dup := ids[id]; dup || id == "" {
				t.Errorf("operationId %q of %s %s is also %s's", id, m, path, other)
			}
			ids[id] = m + " " + path
		}
	}
	ops, err := DocumentedOperations(body)
	if err != nil {
		t.Fatal(err)
	}
	if missing := Undocumented(s.served, ops); len(missing) > 0 {
		t.Errorf("served but not documented: %v", missing)
	}
	call := func(method, path string) (*http.Response, error) {
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", e.srv.URL)
		return http.DefaultClient.Do(req)
	}
	bad, err := Unanswered(ops, call)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("documented but not served: %v", bad)
	}

	// The checker fails when a route is added without documentation...
	s.api.handle("GET /api/v1/undocumented", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	s.served = append(s.served, "GET /api/v1/undocumented")
	if missing := Undocumented(s.served, ops); !slices.Equal(missing, []string{"GET /api/v1/undocumented"}) {
		t.Errorf("an undocumented route: the check found %v", missing)
	}
	// ... and when a documented route is not served.
	bad, err = Unanswered(append(ops, "GET /api/v1/nowhere", "DELETE /api/v1/auth/me"), call)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bad, []string{"GET /api/v1/nowhere: 404 from the router", "DELETE /api/v1/auth/me: 404 from the router"}) {
		t.Errorf("documented routes that nothing serves: the check found %v", bad)
	}

	// The chat socket's protocol is documented beside it.
	code, body = getBody(t, e.srv.URL+"/api/v1/asyncapi.json")
	var async struct {
		AsyncAPI   string `json:"asyncapi"`
		Components struct {
			Messages map[string]any `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &async); code != 200 || err != nil || async.AsyncAPI != "3.0.0" || len(async.Components.Messages) < 9 {
		t.Fatalf("asyncapi.json: %d %v %+v", code, err, async)
	}
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
