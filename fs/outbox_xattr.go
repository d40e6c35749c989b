//go:build linux

package fs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// Extended attributes of outbox files. The user.meshfs. namespace belongs
// to meshfs: users see the delivery state there and cannot write it; the
// backing file's own attributes in it are hidden.
const (
	xattrPrefix = "user.meshfs."
	// xattrState summarises the delivery: "2 of 3 verified".
	xattrState = xattrPrefix + "state"
	// xattrIncomplete marks a backing outbox file that is open for
	// writing. It is set on open-for-write and removed on the last
	// writable release, before OutboxClosed; a file still marked when the
	// node starts was cut short by a crash, and sync does not send it. The
	// sync package reads the same name.
	xattrIncomplete = xattrPrefix + "incomplete"
)

// Summaries shown in user.meshfs.state when there is no delivery to count.
const (
	stateWriting   = "being written"
	stateNotQueued = "not queued"
)

// backingPath is the backing file of outbox path rel.
func (b *outbox) backingPath(rel string) string {
	return filepath.Join(b.root.Path, filepath.FromSlash(rel))
}

// markIncomplete sets the unfinished-writer mark on outbox file rel. A
// backing filesystem without user xattrs loses only this protection.
func (b *outbox) markIncomplete(rel string) {
	if err := unix.Lsetxattr(b.backingPath(rel), xattrIncomplete, []byte("1"), 0); err != nil {
		b.log.Debug("outbox incomplete mark not set", "path", rel, "err", err)
	}
}

// clearIncompleteAt removes the mark through the name rel, for a handle
// that has no file descriptor (see clearIncomplete).
func (b *outbox) clearIncompleteAt(rel string) {
	err := unix.Lremovexattr(b.backingPath(rel), xattrIncomplete)
	if err != nil && err != unix.ENODATA {
		b.log.Debug("outbox incomplete mark not cleared", "path", rel, "err", err)
	}
}

// deliveryXattrs returns the meshfs attributes of the regular file node n
// (name -> value), or nil for a folder or a file no longer in outbox/.
func (n *outboxNode) deliveryXattrs() map[string]string {
	var st syscall.Stat_t
	rel, ok := subtreeRel(n.LoopbackNode)
	if !ok || isTop(n.LoopbackNode) || syscall.Lstat(n.box.backingPath(rel), &st) != nil ||
		st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil
	}
	if n.box.writing(n.EmbeddedInode()) {
		return map[string]string{xattrState: stateWriting}
	}
	members, queued := n.box.delivery(rel)
	if !queued {
		if why := n.box.unsentReason(rel); why != "" {
			return map[string]string{xattrState: why}
		}
		return map[string]string{xattrState: stateNotQueued}
	}
	attrs := make(map[string]string, len(members)+1)
	verified := 0
	for name, state := range members {
		attrs[xattrPrefix+name] = state
		if state == DeliveryVerified {
			verified++
		}
	}
	attrs[xattrState] = fmt.Sprintf("%d of %d verified", verified, len(members))
	return attrs
}

// Getxattr answers user.meshfs.* from the delivery state and passes every
// other attribute through to the backing file.
func (n *outboxNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, xattrPrefix) {
		return n.LoopbackNode.Getxattr(ctx, attr, dest)
	}
	v, ok := n.deliveryXattrs()[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyXattr(dest, []byte(v))
}

// Listxattr lists the backing file's attributes (without its user.meshfs.
// ones) followed by the delivery state, sorted by member name.
func (n *outboxNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, errno := n.backingXattrNames()
	if errno != 0 {
		return 0, errno
	}
	attrs := n.deliveryXattrs()
	ours := make([]string, 0, len(attrs))
	for name := range attrs {
		ours = append(ours, name)
	}
	slices.Sort(ours)
	var list []byte
	for _, name := range append(names, ours...) {
		list = append(append(list, name...), 0)
	}
	return copyXattr(dest, list)
}

// backingXattrNames lists the backing file's attribute names outside the
// user.meshfs. namespace.
func (n *outboxNode) backingXattrNames() ([]string, syscall.Errno) {
	rel, ok := subtreeRel(n.LoopbackNode)
	if !ok {
		return nil, 0
	}
	p := n.box.backingPath(rel)
	buf := make([]byte, 1024)
	for range 4 { // the list may grow between calls
		sz, err := unix.Llistxattr(p, buf)
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, fusefs.ToErrno(err)
		}
		var names []string
		for name := range strings.SplitSeq(string(buf[:sz]), "\x00") {
			if name != "" && !strings.HasPrefix(name, xattrPrefix) {
				names = append(names, name)
			}
		}
		return names, 0
	}
	return nil, syscall.ERANGE
}

// Setxattr refuses the meshfs namespace, which only meshfs writes.
func (n *outboxNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if strings.HasPrefix(attr, xattrPrefix) {
		return syscall.EPERM
	}
	return n.LoopbackNode.Setxattr(ctx, attr, data, flags)
}

// Removexattr refuses the meshfs namespace, which only meshfs writes.
func (n *outboxNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if strings.HasPrefix(attr, xattrPrefix) {
		return syscall.EPERM
	}
	return n.LoopbackNode.Removexattr(ctx, attr)
}

// copyXattr copies v into dest as getxattr(2) and listxattr(2) do: a too
// small buffer gets ERANGE and the size needed (go-fuse turns that into a
// plain size answer when the caller asked for the size only).
func copyXattr(dest, v []byte) (uint32, syscall.Errno) {
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}
