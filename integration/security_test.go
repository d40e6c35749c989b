//go:build linux

package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSecurity: what an outsider sees of a mesh. Nothing readable crosses
// the wire, an expired invite admits no one, and the state on disk is
// private to its user.
func TestSecurity(t *testing.T) {
	longTest(t)
	if os.Geteuid() != 0 {
		t.Skip("capturing packets on lo needs root")
	}
	c := newCluster(t)
	m := c.fullMesh("alice", "bob")
	alice, bob := m[0], m[1]

	t.Run("nothing readable on the wire", func(t *testing.T) {
		marker := fmt.Sprintf("SECRET-MARKER-%d", time.Now().UnixNano())
		cap := startCapture(t, marker, alice, bob)
		say(t, bob, marker+" in chat\n")
		data := bytes.Repeat([]byte(marker+" in a file\n"), 2000)
		if err := os.WriteFile(bob.path("outbox", "marked.txt"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		waitContains(t, alice.path("chat"), marker+" in chat")
		waitFileContent(t, alice.path("inbox", "bob", "marked.txt"), data)
		seen, hits := cap.stop()
		if seen < len(data) {
			t.Fatalf("the capture saw %d bytes between the nodes, fewer than the %d-byte file: it missed the traffic", seen, len(data))
		}
		if hits > 0 {
			t.Errorf("%d captured packets carry the marker in the clear", hits)
		}
	})

	t.Run("an expired invite admits no one", func(t *testing.T) {
		out, err := c.meshfs("invite", alice.mnt, "--ttl", "1ms")
		if err != nil {
			t.Fatal(err)
		}
		expired := lastLine(out)
		alice.invite() // another invite stays open, so alice reads the JOIN and says why
		msg, err := c.meshfsMount("dave", "--join", alice.addr, "--invite", expired)
		if err == nil {
			t.Fatal("mount with an expired invite succeeded")
		}
		if !strings.Contains(msg, "invite expired") {
			t.Errorf("error %q does not say the invite expired", msg)
		}
		if l := alice.peerLine("dave"); l != "" {
			t.Errorf("alice lists dave: %q", l)
		}
	})

	t.Run("state on disk is private", func(t *testing.T) {
		for _, n := range []*node{alice, bob} {
			privateState(t, n)
		}
		if _, err := os.Stat(filepath.Join(alice.state, "mesh", "ca.key")); err != nil {
			t.Errorf("the admin's CA key is not at STATE/mesh/ca.key: %v", err)
		}
	})
}

// privateState checks that n's state folder is 0700 and that no key file
// in it can be read by group or others.
func privateState(t *testing.T, n *node) {
	t.Helper()
	fi, err := os.Stat(n.state)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("%s's state folder is %o, want 700", n.name, perm)
	}
	keys := 0
	filepath.WalkDir(n.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), "key") {
			return nil
		}
		keys++
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %o: readable by others", p, info.Mode().Perm())
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(n.state, "mesh", "node.key")); err != nil || keys == 0 {
		t.Errorf("%s has no node key at STATE/mesh/node.key (%d key files): %v", n.name, keys, err)
	}
}

// capture reads every packet on the loopback interface, as tcpdump does
// (an AF_PACKET socket; root only). It keeps only counts: the TCP payload
// bytes to or from the nodes' ports, which show it saw their traffic, and
// the packets anywhere on lo that carry the marker.
type capture struct {
	fd     int
	marker []byte
	ports  map[uint16]bool
	seen   atomic.Int64
	hits   atomic.Int64
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func startCapture(t *testing.T, marker string, nodes ...*node) *capture {
	t.Helper()
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: lo.Index})
	}
	if err != nil {
		unix.Close(fd)
		t.Fatalf("capture on lo: %v", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) // no drops under load
	// A receive timeout lets the loop notice stop.
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	c := &capture{fd: fd, marker: []byte(marker), ports: map[uint16]bool{},
		quit: make(chan struct{}), done: make(chan struct{})}
	for _, n := range nodes {
		_, port, _ := net.SplitHostPort(n.addr)
		p, _ := strconv.Atoi(port)
		c.ports[uint16(p)] = true
	}
	go c.loop()
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 1<<17) // lo's MTU is 64 KiB
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		if n, _, err := unix.Recvfrom(c.fd, buf, 0); err == nil {
			c.count(buf[:n])
		}
	}
}

// stop ends the capture and returns the payload bytes seen between the
// nodes (each packet counts twice on lo: sent and received) and the number
// of packets that carried the marker.
func (c *capture) stop() (seen, hits int) {
	c.once.Do(func() {
		close(c.quit)
		<-c.done
		unix.Close(c.fd)
	})
	return int(c.seen.Load()), int(c.hits.Load())
}

// count takes one frame from lo: a 14-byte Ethernet header, then IPv4 and TCP.
func (c *capture) count(pkt []byte) {
	if bytes.Contains(pkt, c.marker) {
		c.hits.Add(1)
	}
	if len(pkt) < 14+20 || binary.BigEndian.Uint16(pkt[12:14]) != 0x0800 {
		return
	}
	ip := pkt[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != unix.IPPROTO_TCP || len(ip) < ihl+20 {
		return
	}
	tcp := ip[ihl:]
	if !c.ports[binary.BigEndian.Uint16(tcp[0:2])] && !c.ports[binary.BigEndian.Uint16(tcp[2:4])] {
		return
	}
	if off := int(tcp[12]>>4) * 4; len(tcp) > off {
		c.seen.Add(int64(len(tcp) - off))
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
