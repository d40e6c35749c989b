package mesh

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// settleMax bounds how long a steady stream of routing messages can
// postpone a change: it is handled at most this long after the first.
const settleMax = 2 * time.Second

// settleDelay coalesces a burst of address or route messages into one
// change: a DHCP renewal or a VPN coming up sends a dozen.
const settleDelay = 200 * time.Millisecond

// Multicast groups of linux/rtnetlink.h, which package syscall lacks
// (mesh imports the standard library only, not golang.org/x/sys).
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv4Route  = 0x40
	rtmgrpIPv6IfAddr = 0x100
)

// netlinkGroups are the routing messages that can strand a connection:
// addresses coming and going, links going up or down, IPv4 routes (a VPN
// taking the default route).
const netlinkGroups = rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr | rtmgrpLink | rtmgrpIPv4Route

// startWatch starts the goroutine that turns routing messages into
// addrsChanged calls, counted in n.wg. It reads a netlink socket, which
// costs nothing while the network is quiet; Close closes the socket to
// stop it. Without netlink (a sandbox that forbids it) it polls.
func (n *Node) startWatch() {
	f, err := openNetlink()
	if err != nil {
		n.log.Warn("address changes polled, not watched", "err", err, "every", pollEvery,
			"fix", "nothing: a changed address is noticed up to 10 s later")
		n.wg.Add(1)
		go n.pollAddrs()
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		f.Close()
		return
	}
	n.watch = f
	n.wg.Add(1)
	go n.watchNetlink(f)
}

// openNetlink opens a non-blocking route socket subscribed to
// netlinkGroups. As an *os.File it sits in the runtime's poller, so a
// read waits without a thread, takes a deadline (the coalescing timer)
// and returns at once when Close closes it.
func openNetlink() (*os.File, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK,
		syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	sa := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: netlinkGroups}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close() // not in the poller: Close could not stop a read
		return nil, fmt.Errorf("netlink socket not pollable: %w", err)
	}
	return f, nil
}

// watchNetlink runs watchRoutes on f until Close closes it.
func (n *Node) watchNetlink(f *os.File) {
	defer n.wg.Done()
	err := watchRoutes(f, n.addrsChanged)
	if n.ctx.Err() == nil {
		n.log.Warn("address watcher stopped", "err", err,
			"fix", "nothing: connections recover at their read deadline instead")
	}
}

// watchRoutes reads routing messages from f and calls changed once per
// burst, until a read fails (f closed). A relevant message arms the read
// deadline settleDelay ahead, re-armed by each message of a burst but
// never past settleMax after the first; the deadline expiring is the
// change. While the network is quiet no deadline is set: nothing runs.
func watchRoutes(f *os.File, changed func()) error {
	buf := make([]byte, 64<<10)
	var first time.Time // first message of the pending burst; zero when none is
	for {
		k, err := f.Read(buf)
		switch {
		case err == nil && !relevantNetlink(buf[:k]):
			continue
		case err == nil, errors.Is(err, syscall.ENOBUFS): // ENOBUFS: messages were lost
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			f.SetReadDeadline(now.Add(min(settleDelay, first.Add(settleMax).Sub(now))))
		case errors.Is(err, os.ErrDeadlineExceeded):
			first = time.Time{}
			f.SetReadDeadline(time.Time{})
			changed()
		default:
			return err
		}
	}
}

// relevantNetlink reports whether a datagram from the route socket holds
// a message that can change which addresses work. Wireless link messages
// (scans, signal) are skipped: they come every few seconds and change
// nothing. A datagram that does not parse counts, to be safe.
func relevantNetlink(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case syscall.RTM_NEWADDR, syscall.RTM_DELADDR, syscall.RTM_DELLINK,
			syscall.RTM_NEWROUTE, syscall.RTM_DELROUTE:
			return true
		case syscall.RTM_NEWLINK:
			if !wirelessOnly(&m) {
				return true
			}
		}
	}
	return false
}

// wirelessOnly reports whether a link message carries wireless events.
func wirelessOnly(m *syscall.NetlinkMessage) bool {
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.Attr.Type == syscall.IFLA_WIRELESS {
			return true
		}
	}
	return false
}
