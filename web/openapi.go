package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"onair/rooms"
	"onair/rooms/webhook"
)

// The OpenAPI 3.1 document of the HTTP API, written from the route table (routes.go) and
// the Go types of its requests and answers (their JSON as encoding/json writes it), once
// at start, and served at /api/v1/openapi.json. Nothing in it is written by hand but the
// summaries in the table and the few words below.

// openAPIDocument builds the document of the routes this server registered.
func (s *Server) openAPIDocument() ([]byte, error) {
	sc := newSchemas()
	paths := map[string]map[string]any{}
	ids := map[string]bool{}
	for _, rt := range s.table {
		path := docPath(rt.path)
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		methods := []string{rt.method}
		if rt.method == "" {
			methods = []string{"GET"} // a pattern for every method: documented by its main one
		}
		for _, m := range methods {
			op := operation(rt, sc)
			// One handler may serve two routes (a room's delete, an admin's take-down):
			// the second is named by its path, so that every operationId is unique.
			if id := op["operationId"].(string); ids[id] {
				op["operationId"] = pathID(m, rt.path)
			}
			ids[op["operationId"].(string)] = true
			paths[path][strings.ToLower(m)] = op
		}
	}
	var tagList []map[string]any
	for _, t := range tags {
		tagList = append(tagList, map[string]any{"name": t.name, "description": t.doc})
	}
	scopes := map[string]string{}
	for _, info := range rooms.Scopes {
		scopes[string(info.Scope)] = info.Description
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "onair",
			"version": "1",
			"description": "onair's HTTP API. JSON under /api/v1; errors are {\"error\": {\"code\", \"message\", \"field\"}} with the stable " +
				"codes invalid (400), unauthorized (401), forbidden (403), csrf (403), not_found (404), conflict (409), " +
				"rate_limited (429, with Retry-After), unavailable (503) and internal (500). Unknown JSON fields are refused. " +
				"A browser session (the onair_session cookie) sends its unsafe requests with the page's Origin and the " +
				"X-CSRF-Token of GET /api/v1/auth/me. Scripts send a personal API token instead, as Authorization: Bearer " +
				"<token>, which needs neither: each operation names the scope (x-onair-scope) its token must carry, and a " +
				"token never does more than its account may. Rooms are named in paths ({slug}) by slug or playback id.",
		},
		"servers": []map[string]any{{"url": "/"}},
		"tags":    tagList,
		"paths":   paths,
		"components": map[string]any{
			"schemas": sc.defs,
			"securitySchemes": map[string]any{
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie,
					"description": "A browser session; unsafe requests also need the page's Origin and the X-CSRF-Token header."},
				"token": map[string]any{"type": "http", "scheme": "bearer",
					"description": "A personal API token (onair_pat_…) made in the dashboard; its scopes: " + scopeList(scopes)},
			},
			"responses": map[string]any{
				"Error": map[string]any{"description": "An error, with its stable code",
					"content": map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeFor[apiError]())}}},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("web: OpenAPI document: %w", err)
	}
	return b, nil
}

func scopeList(scopes map[string]string) string {
	var parts []string
	for _, info := range rooms.Scopes {
		parts = append(parts, string(info.Scope)+" ("+scopes[string(info.Scope)]+")")
	}
	return strings.Join(parts, "; ")
}

// docPath is a ServeMux path as OpenAPI writes it: {key...} is {key}.
func docPath(p string) string { return strings.ReplaceAll(p, "...}", "}") }

// pathParamDocs say what each path parameter names.
var pathParamDocs = map[string]string{
	"slug":     "a room's slug, or its playback id",
	"id":       "the id of what the path names (a broadcast's public id, a message, a webhook, a token)",
	"handle":   "a user's handle",
	"user":     "a user's handle or id",
	"delivery": "a webhook delivery's id",
	"name":     "a stream's name: a public room's slug, another room's playback id, or a configured stream",
	"file":     "an HLS playlist, part, segment or init file",
	"ref":      "a private room's playback id",
	"key":      "an object's key",
}

// operation documents one route.
func operation(rt route, sc *schemas) map[string]any {
	op := map[string]any{
		"operationId": operationID(rt),
		"summary":     rt.summary,
		"tags":        []string{rt.tag},
	}
	if rt.doc != "" {
		op["description"] = rt.doc
	}
	var params []map[string]any
	for _, name := range pathParams(rt.path) {
		name = strings.TrimSuffix(name, "...")
		params = append(params, map[string]any{"name": name, "in": "path", "required": true,
			"description": pathParamDocs[name], "schema": map[string]any{"type": "string"}})
	}
	for _, q := range rt.query {
		params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.doc, "schema": map[string]any{"type": q.typ}})
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.in != nil {
		op["requestBody"] = map[string]any{"required": true,
			"content": map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.in))}}}
	}
	status := rt.status
	switch {
	case status == 0 && rt.out == nil && rt.media == "":
		status = http.StatusNoContent
	case status == 0 && rt.media == "redirect":
		status = http.StatusFound
	case status == 0 && rt.media == "websocket":
		status = http.StatusSwitchingProtocols
	case status == 0:
		status = http.StatusOK
	}
	ok := map[string]any{"description": http.StatusText(status)}
	switch {
	case rt.out != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.out))}}
	case rt.media == "websocket":
		ok["description"] = "the chat socket: see /api/v1/asyncapi.json"
	case rt.media == "redirect":
		ok["description"] = "redirect: Location is where to go"
	case rt.media != "":
		ok["content"] = map[string]any{rt.media: map[string]any{}}
	}
	op["responses"] = map[string]any{fmt.Sprint(status): ok, "default": map[string]any{"$ref": "#/components/responses/Error"}}
	if !strings.HasPrefix(rt.path, "/api/") {
		return op
	}
	token := map[string]any{"token": []string{}}
	if rt.scope != "" {
		token = map[string]any{"token": []string{string(rt.scope)}}
		op["x-onair-scope"] = string(rt.scope)
	}
	var security []map[string]any
	if rt.access == public {
		security = append(security, map[string]any{})
	}
	security = append(security, map[string]any{"session": []string{}})
	if !rt.browser {
		security = append(security, token)
	}
	op["security"] = security
	switch rt.access {
	case adminOnly:
		op["x-onair-access"] = "admins"
	case signedIn:
		op["x-onair-access"] = "signed in"
	default:
		op["x-onair-access"] = "anyone"
	}
	if rt.browser {
		op["x-onair-access"] = op["x-onair-access"].(string) + ", browser session only (no API token)"
	}
	return op
}

// operationID is the name of the route's handler method: createRoom, listAudit.
func operationID(rt route) string {
	name := runtime.FuncForPC(reflect.ValueOf(rt.h).Pointer()).Name()
	name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "-fm")
	if name == "" || strings.HasPrefix(name, "func") || name == "ServeHTTP" {
		return pathID(rt.method, rt.path)
	}
	return name
}

// pathID names an operation by its method and path: delete_api_v1_admin_rooms_slug.
func pathID(method, path string) string {
	return strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(path)
}

// schemas turns Go types into JSON Schemas (draft 2020-12, as OpenAPI 3.1 takes them):
// named structs become components, referred to by $ref.
type schemas struct {
	defs  map[string]any
	names map[reflect.Type]string
}

func newSchemas() *schemas { return &schemas{defs: map[string]any{}, names: map[reflect.Type]string{}} }

// enums are the values of the string types that take only a few.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[rooms.Visibility](): {string(rooms.Public), string(rooms.Unlisted), string(rooms.Private)},
	reflect.TypeFor[webhook.Format]():   {string(webhook.FormatJSON), string(webhook.FormatSlack)},
	reflect.TypeFor[rooms.Scope](): func() []string {
		var out []string
		for _, s := range rooms.Scopes {
			out = append(out, string(s.Scope))
		}
		return out
	}(),
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	rawType      = reflect.TypeFor[json.RawMessage]()
)

// of is the schema of t.
func (sc *schemas) of(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType:
		return map[string]any{"type": "integer", "description": "milliseconds"}
	case rawType:
		return map[string]any{}
	}
	if vals, ok := enums[t]; ok {
		return map[string]any{"type": "string", "enum": vals}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return sc.of(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": sc.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" {
			return sc.object(t)
		}
		name := sc.name(t)
		if _, ok := sc.defs[name]; !ok {
			sc.defs[name] = map[string]any{} // a placeholder, for types that refer to themselves
			sc.defs[name] = sc.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// name is a component name for a named type: its name, with its package's in front when
// another package has a type of that name (rooms.User, webhook.UserRef).
func (sc *schemas) name(t reflect.Type) string {
	if n, ok := sc.names[t]; ok {
		return n
	}
	n := exported(t.Name())
	if pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]; prefixed[pkg] {
		n = exported(pkg) + n
	}
	for other, taken := range sc.names {
		if taken == n && other != t {
			n = exported(t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]) + n
			break
		}
	}
	sc.names[t] = n
	return n
}

// prefixed are the packages whose type names say little alone (audit.Page, audit.Room).
var prefixed = map[string]bool{"audit": true}

func exported(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// object is a struct's schema: its fields as encoding/json writes them, the embedded
// structs' fields included; fields without omitempty or omitzero are required.
func (sc *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	sc.fields(t, props, &required)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = required
	}
	return out
}

func (sc *schemas) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sc.fields(ft, props, required)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		schema := sc.of(f.Type)
		if f.Type.Kind() == reflect.Pointer && !strings.Contains(opts, "omitempty") {
			schema = map[string]any{"oneOf": []any{schema, map[string]any{"type": "null"}}}
		}
		props[name] = schema
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && !slices.Contains(*required, name) {
			*required = append(*required, name)
		}
	}
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	serveDocument(w, s.openapi)
}

func (s *Server) serveAsyncAPI(w http.ResponseWriter, _ *http.Request) {
	serveDocument(w, s.asyncapi)
}

func serveDocument(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(b)
}
