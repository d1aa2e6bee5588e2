package rtmp

import (
	"net"
	"net/netip"
	"slices"
)

// connTable holds the open connections by client address and decides which new ones get
// in. Server.mu guards it.
//
// Idle TCP connections cost an attacker nothing, so the limits count every connection,
// from its accept on. A connection from one address is refused once that address holds
// perAddr. When the server holds max connections, or maxSetup that have not published
// yet, the busiest address with connections that have not published yet (of equally busy
// ones, the one with the oldest such connection) gives up the oldest of them to a
// newcomer from an address holding at least two fewer: addresses that fill the server
// with idle or never-publishing connections cannot keep others out, while publishing
// connections are never given up, and equal addresses do not take turns evicting each
// other. maxSetup bounds what connections anyone can open cost together, many addresses
// or not: each holds its buffers (ConnMemory) until it publishes or times out.
type connTable struct {
	max, perAddr, maxSetup int
	all                    map[*conn]struct{}
	byAddr                 map[netip.Addr]*addrConns
	inSetup                int    // connections in all that do not publish
	added                  uint64 // connections added so far: conn.seq
}

type addrConns struct {
	open  int
	setup []*conn // connections not publishing yet, oldest first
}

func newConnTable(max, perAddr, maxSetup int) connTable {
	return connTable{max: max, perAddr: perAddr, maxSetup: maxSetup, all: map[*conn]struct{}{}, byAddr: map[netip.Addr]*addrConns{}}
}

// admit decides on a new connection from addr: in, in after evict gives up its place,
// or refused for the reason returned.
func (t *connTable) admit(addr netip.Addr) (evict *conn, refusal string) {
	open := 0
	if a := t.byAddr[addr]; a != nil {
		open = a.open
	}
	if open >= t.perAddr {
		return nil, RefusedTooManyFromAddress
	}
	full := RefusedTooMany
	switch {
	case len(t.all) < t.max && t.inSetup < t.maxSetup:
		return nil, ""
	case len(t.all) < t.max:
		full = RefusedTooManyInSetup
	}
	var busiest *addrConns
	for _, a := range t.byAddr {
		if len(a.setup) == 0 {
			continue
		}
		if busiest == nil || a.open > busiest.open || a.open == busiest.open && a.setup[0].seq < busiest.setup[0].seq {
			busiest = a
		}
	}
	if busiest == nil || busiest.open < open+2 {
		return nil, full
	}
	return busiest.setup[0], ""
}

func (t *connTable) add(c *conn) {
	a := t.byAddr[c.addr]
	if a == nil {
		a = &addrConns{}
		t.byAddr[c.addr] = a
	}
	a.open++
	t.added++
	c.seq = t.added
	a.setup = append(a.setup, c)
	t.inSetup++
	t.all[c] = struct{}{}
	c.tracked = true
}

// published marks c as publishing: it can no longer be evicted.
func (t *connTable) published(c *conn) {
	c.publishing = true
	t.inSetup--
	if a := t.byAddr[c.addr]; a != nil {
		a.setup = slices.DeleteFunc(a.setup, func(x *conn) bool { return x == c })
	}
}

func (t *connTable) remove(c *conn) {
	if !c.tracked {
		return
	}
	c.tracked = false
	delete(t.all, c)
	if !c.publishing {
		t.inSetup--
	}
	a := t.byAddr[c.addr]
	if a.open--; a.open == 0 {
		delete(t.byAddr, c.addr)
		return
	}
	if !c.publishing {
		a.setup = slices.DeleteFunc(a.setup, func(x *conn) bool { return x == c })
	}
}

// addrKey is what the per-address limit counts by: the IP address, IPv4-mapped IPv6
// addresses as IPv4, and IPv6 addresses by their /64, since one subscriber usually gets
// a whole /64 and could otherwise open each connection from a new address.
func addrKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip
}
