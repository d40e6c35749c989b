//go:build !linux

package fs

import (
	"errors"
	"log/slog"
)

// This file stands in for the FUSE tree on systems other than Linux: the
// tree is built on go-fuse and on Linux's FUSE protocol and mount calls,
// so elsewhere Mount and Available refuse, saying what works instead (the
// plain-folder mode, package folder).

// ErrUnavailable is returned by Available when this machine cannot mount
// FUSE file systems. Its text is the whole guidance a user needs.
var ErrUnavailable = errors.New("FUSE mounts need Linux; use --no-fuse")

// Sentinels of Mount on Linux, declared here so callers build everywhere.
var (
	// ErrNotFolder: the mount point (or a backing folder) is not a folder.
	ErrNotFolder = errors.New("not a folder")
	// ErrMounted: something is already mounted on the mount point.
	ErrMounted = errors.New("already a mount point")
)

// Config says what to mount where (see the Linux version for each field).
type Config struct {
	Mountpoint string
	Root       string
	ChatLog    string
	Syncer     Syncer
	Logger     *slog.Logger
	Debug      bool
}

// Server is never created here; its methods exist so callers build.
type Server struct{}

// Available returns ErrUnavailable: FUSE mounts need Linux.
func Available() error { return ErrUnavailable }

// ClearStale does nothing: there are no FUSE mounts to clear.
func ClearStale(string) error { return nil }

// Mount returns ErrUnavailable.
func Mount(Config) (*Server, error) { return nil, ErrUnavailable }

// Unmount does nothing.
func (s *Server) Unmount() error { return nil }

// Wait returns at once.
func (s *Server) Wait() {}

// Changed does nothing, like the Linux version on a nil Server.
func (s *Server) Changed(string) {}

// Writing is false, like the Linux version on a nil Server.
func (s *Server) Writing(string) bool { return false }

// WritingTo is false, like the Linux version on a nil Server.
func (s *Server) WritingTo(string, string) bool { return false }
