package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sameUser refuses clients running as another user: the socket's folder is
// already 0700, this also covers root-owned folders shared by accident.
// LOCAL_PEERCRED is macOS's SO_PEERCRED.
func sameUser(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Xucred
	var credErr error
	raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	})
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Geteuid() && cred.Uid != 0 {
		return errors.New("permission denied: the node belongs to another user")
	}
	return nil
}
