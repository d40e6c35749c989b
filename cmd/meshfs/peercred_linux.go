package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// sameUser refuses clients running as another user: the socket's folder is
// already 0700, this also covers root-owned folders shared by accident.
func sameUser(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if credErr != nil {
		return fmt.Errorf("peer credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Geteuid() && cred.Uid != 0 {
		return errors.New("permission denied: the node belongs to another user")
	}
	return nil
}
