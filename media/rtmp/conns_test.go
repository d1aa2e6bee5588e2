package rtmp

import (
	"fmt"
	"net"
	"testing"
)

// TestConnTableAdmit: which new connection gets in, evicts whom, or is refused, given the
// connections open. Each step opens (or publishes) a connection from an address.
func TestConnTableAdmit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		max, perAddr int
		steps        []step
	}{
		{"under both limits", 10, 3, cat(open("10.0.0.1", 3), open("10.0.0.2", 3))},
		{"per-address limit", 10, 3, cat(open("10.0.0.1", 3), []step{{addr: "10.0.0.1", refusal: RefusedTooManyFromAddress}})},
		{"per-address limit counts publishers", 10, 2, []step{
			{addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", refusal: RefusedTooManyFromAddress},
		}},
		{"one address fills the server: another gets in, evicting its oldest idle one", 4, 4, cat(
			open("10.0.0.1", 4), []step{{addr: "10.0.0.2", evicts: 1}, {addr: "10.0.0.2", evicts: 2}},
			// now 2 and 2: no one evicts any more; a third address evicts the oldest idle one
			[]step{{addr: "10.0.0.2", refusal: RefusedTooMany}, {addr: "10.0.0.1", refusal: RefusedTooMany}, {addr: "10.0.0.3", evicts: 3}},
		)},
		{"of equally busy addresses, the oldest idle connection goes", 4, 4, cat(open("10.0.0.2", 2), open("10.0.0.1", 2),
			[]step{{addr: "10.0.0.3", evicts: 1}, {addr: "10.0.0.4", evicts: 3}})},
		{"publishing connections are never evicted", 3, 3, []step{
			{addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1"},
			{addr: "10.0.0.2", evicts: 3}, {addr: "10.0.0.3", refusal: RefusedTooMany},
		}},
		{"the busiest address with idle connections gives one up", 6, 6, []step{
			{addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", publish: true},
			{addr: "10.0.0.2"}, {addr: "10.0.0.2"}, {addr: "10.0.0.3"},
			{addr: "10.0.0.4", evicts: 4},
		}},
		{"a full server of single connections refuses", 3, 3, cat(open("10.0.0.1", 1), open("10.0.0.2", 1), open("10.0.0.3", 1),
			[]step{{addr: "10.0.0.4", refusal: RefusedTooMany}})},
		{"an IPv6 /64 is one address", 10, 2, []step{
			{addr: "2001:db8::1"}, {addr: "2001:db8::2:3"}, {addr: "2001:db8::ffff", refusal: RefusedTooManyFromAddress},
			{addr: "2001:db8:0:1::1"},
		}},
		{"IPv4-mapped IPv6 is IPv4", 10, 1, []step{{addr: "10.0.0.1"}, {addr: "::ffff:10.0.0.1", refusal: RefusedTooManyFromAddress}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAdmits(t, newConnTable(tc.max, tc.perAddr, tc.max), tc.steps) })
	}
}

// TestConnTableSetupLimit: connections that have not published count against maxSetup
// as all count against max, so that many addresses together cannot hold more than
// maxSetup of them; publishing ones do not count.
func TestConnTableSetupLimit(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		max, perAddr, maxSetup int
		steps                  []step
	}{
		{"many addresses fill the setup limit: no one evicts an equal, a newcomer evicts the busiest", 100, 4, 4, cat(
			open("10.0.0.1", 1), open("10.0.0.2", 1), open("10.0.0.3", 2),
			[]step{{addr: "10.0.0.4", evicts: 3}, {addr: "10.0.0.4", refusal: RefusedTooManyInSetup}},
		)},
		{"publishing connections leave room", 100, 4, 2, []step{
			{addr: "10.0.0.1", publish: true}, {addr: "10.0.0.1", publish: true}, {addr: "10.0.0.2"}, {addr: "10.0.0.3"},
			{addr: "10.0.0.4", refusal: RefusedTooManyInSetup},
		}},
		{"a publisher gets past attackers from many addresses", 100, 3, 6, cat(
			open("10.0.0.1", 3), open("10.0.0.2", 3), []step{{addr: "192.0.2.1", evicts: 1}},
		)},
		{"the connection limit still applies", 3, 3, 10, cat(open("10.0.0.1", 1), open("10.0.0.2", 1), open("10.0.0.3", 1),
			[]step{{addr: "10.0.0.4", refusal: RefusedTooMany}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAdmits(t, newConnTable(tc.max, tc.perAddr, tc.maxSetup), tc.steps)
		})
	}
}

// step opens (or publishes) a connection from an address.
type step struct {
	addr    string
	publish bool   // the connection then publishes
	refusal string // expected refusal
	evicts  int    // expected eviction: 1 + index of the evicted step's connection; 0 none
}

// open is n steps from addr.
func open(addr string, n int) []step {
	s := make([]step, n)
	for i := range s {
		s[i] = step{addr: addr}
	}
	return s
}

func cat(ss ...[]step) []step {
	var out []step
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// checkAdmits takes steps on table, checks each admission and the limits after it, and
// checks that the table is empty once every connection is removed.
func checkAdmits(t *testing.T, table connTable, steps []step) {
	t.Helper()
	conns := make([]*conn, len(steps))
	for i, st := range steps {
		c := &conn{addr: addrKey(&net.TCPAddr{IP: net.ParseIP(st.addr), Port: 1935})}
		evict, refusal := table.admit(c.addr)
		if refusal != st.refusal {
			t.Fatalf("step %d (%s): refusal %q, want %q", i, st.addr, refusal, st.refusal)
		}
		want := (*conn)(nil)
		if st.evicts > 0 {
			want = conns[st.evicts-1]
		}
		if evict != want {
			t.Fatalf("step %d (%s): evicts %s, want %s", i, st.addr, stepOf(conns, evict), stepOf(conns, want))
		}
		if refusal != "" {
			continue
		}
		if evict != nil {
			table.remove(evict)
		}
		table.add(c)
		conns[i] = c
		if st.publish {
			table.published(c)
		}
		if len(table.all) > table.max || table.inSetup > table.maxSetup {
			t.Fatalf("step %d: %d connections open, %d not publishing; limits %d, %d", i, len(table.all), table.inSetup, table.max, table.maxSetup)
		}
	}
	for _, c := range conns {
		if c != nil {
			table.remove(c)
		}
	}
	if len(table.all) != 0 || len(table.byAddr) != 0 || table.inSetup != 0 {
		t.Fatalf("after removing every connection: %d left, %d addresses, %d not publishing", len(table.all), len(table.byAddr), table.inSetup)
	}
}

func stepOf(conns []*conn, c *conn) string {
	if c == nil {
		return "none"
	}
	for i, x := range conns {
		if x == c {
			return fmt.Sprintf("step %d's connection", i)
		}
	}
	return "an unknown connection"
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 5000}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 5000}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5000, Zone: "eth0"}, "fe80::"},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, "invalid IP"},
	} {
		if got := addrKey(tc.addr); got.String() != tc.want {
			t.Errorf("addrKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if addrKey(&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}) == addrKey(&net.TCPAddr{IP: net.ParseIP("127.0.0.2")}) {
		t.Error("127.0.0.1 and 127.0.0.2 count as one address")
	}
}
