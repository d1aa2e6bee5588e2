package main

import (
	"testing"
)

func TestParseEIOOpen(t *testing.T) {
	h, err := parseEIOOpen([]byte(`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	if err != nil || h.SID != "lv_VI97HAXpY6yYWAAAC" || h.PingInterval != 25000 || h.PingTimeout != 20000 || h.MaxPayload != 1000000 {
		t.Fatalf("open = %+v, %v", h, err)
	}
	for _, bad := range []string{"", "2", `0{}`, `0{"sid":"x"}`, `0not json`, `9{}`} {
		if _, err := parseEIOOpen([]byte(bad)); err == nil {
			t.Errorf("open packet %q accepted", bad)
		}
	}
}

func TestParseSIO(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sioPacket
	}{
		{`0{"sid":"abc"}`, sioPacket{Type: sioConnect, Namespace: "/", ID: -1, Data: []byte(`{"sid":"abc"}`)}},
		{`2["msg",{"text":"hi"}]`, sioPacket{Type: sioEvent, Namespace: "/", ID: -1, Data: []byte(`["msg",{"text":"hi"}]`)}},
		{`213["msg","x"]`, sioPacket{Type: sioEvent, Namespace: "/", ID: 13, Data: []byte(`["msg","x"]`)}},
		{`30[]`, sioPacket{Type: sioAck, Namespace: "/", ID: 0, Data: []byte(`[]`)}},
		{`3/admin,7[{"ok":true}]`, sioPacket{Type: sioAck, Namespace: "/admin", ID: 7, Data: []byte(`[{"ok":true}]`)}},
		{`1`, sioPacket{Type: sioDisconnect, Namespace: "/", ID: -1, Data: []byte{}}},
		{`4{"message":"Invalid namespace"}`, sioPacket{Type: sioConnectError, Namespace: "/", ID: -1, Data: []byte(`{"message":"Invalid namespace"}`)}},
	} {
		got, err := parseSIO([]byte(tc.in))
		if err != nil || got.Type != tc.want.Type || got.Namespace != tc.want.Namespace || got.ID != tc.want.ID || string(got.Data) != string(tc.want.Data) {
			t.Errorf("parseSIO(%s) = %+v (%s), %v; want %+v", tc.in, got, got.Data, err, tc.want)
		}
	}
	for _, bad := range []string{"", "9", `51-["x",{"_placeholder":true,"num":0}]`} {
		if _, err := parseSIO([]byte(bad)); err == nil {
			t.Errorf("packet %q accepted", bad)
		}
	}
}

func TestSIOEventFrame(t *testing.T) {
	f, err := sioEventFrame(0, "join", "bench")
	if err != nil || string(f) != `420["join","bench"]` {
		t.Errorf("join = %s, %v", f, err)
	}
	f, err = sioEventFrame(42, "msg", map[string]string{"room": "bench", "text": "~m41.1~"})
	if err != nil || string(f) != `4242["msg",{"room":"bench","text":"~m41.1~"}]` {
		t.Errorf("msg = %s, %v", f, err)
	}
	f, err = sioEventFrame(-1, "ping")
	if err != nil || string(f) != `42["ping"]` {
		t.Errorf("no ack = %s, %v", f, err)
	}
	// What the client sends, read back as the server would.
	typ, payload, err := parseEIO(f)
	if err != nil || typ != eioMessage {
		t.Fatalf("parseEIO = %q, %v", typ, err)
	}
	p, err := parseSIO(payload)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := sioEventName(p); err != nil || name != "ping" {
		t.Errorf("event name %q, %v", name, err)
	}
}

func TestSIOAckError(t *testing.T) {
	for in, want := range map[string]string{
		`[{"ok":true}]`:             "",
		`[]`:                        "",
		`[{"error":"not_in_room"}]`: "not_in_room",
		`["x"]`:                     "",
	} {
		if got := sioAckError([]byte(in)); got != want {
			t.Errorf("sioAckError(%s) = %q, want %q", in, got, want)
		}
	}
}
