package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The control socket: 'meshfs invite', 'remove', 'status' and 'unmount' talk
// to the running node through a Unix socket in a 0700 folder, one JSON
// request and one JSON response per connection. Only the user who runs the
// node may use it (checked with SO_PEERCRED as well as by the folder mode).

// controlTimeout bounds one request, so a stuck client cannot hold the server.
const controlTimeout = 30 * time.Second

type controlRequest struct {
	Op   string        `json:"op"` // invite, remove, status, doctor, ui, shutdown
	TTL  time.Duration `json:"ttl,omitempty"`
	Uses int           `json:"uses,omitempty"`
	Peer string        `json:"peer,omitempty"`
}

type controlResponse struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// controlFunc answers one request; the result is marshalled as JSON.
type controlFunc func(ctx context.Context, req controlRequest) (any, error)

// controlServer serves the control socket until Close.
type controlServer struct {
	ln     net.Listener
	path   string
	handle controlFunc
	log    *slog.Logger
	wg     sync.WaitGroup
}

// listenControl creates the socket at path. A socket left behind by a crashed
// node is replaced; one that still answers means the mount point is served.
func listenControl(path string, handle controlFunc, log *slog.Logger) (*controlServer, error) {
	if err := makePrivateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errors.New("another meshfs is already serving this mount point")
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &controlServer{ln: ln, path: path, handle: handle, log: log}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *controlServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("status connection not accepted", "err", err,
				"fix", "nothing: retried shortly; meshfs status may fail meanwhile")
			time.Sleep(100 * time.Millisecond) // back off instead of spinning on a persistent error
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c.(*net.UnixConn))
		}()
	}
}

func (s *controlServer) serveConn(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	var resp controlResponse
	var req controlRequest
	if err := sameUser(c); err != nil {
		resp.Error = err.Error()
	} else if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		resp.Error = fmt.Sprintf("bad request: %v", err)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
		result, err := s.handle(ctx, req)
		cancel()
		if err != nil {
			resp.Error = err.Error()
		} else if resp.Result, err = json.Marshal(result); err != nil {
			resp.Error = err.Error()
		}
	}
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		s.log.Debug("control reply failed", "err", err)
	}
}

// Close stops accepting, waits for requests in progress and removes the socket.
func (s *controlServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	os.Remove(s.path)
	return err
}

// callControl sends one request to the node serving mnt and decodes its
// result into out (which may be nil).
func callControl(ctx context.Context, mnt string, req controlRequest, out any) error {
	path, err := controlSocket(mnt)
	if err != nil {
		return err
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("no meshfs node is running for %s (start one with 'meshfs mount %s')", mnt, mnt)
		}
		return fmt.Errorf("reach the node for %s: %w", mnt, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(controlTimeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("send %s request: %w", req.Op, err)
	}
	var resp controlResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("read %s reply: %w", req.Op, err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	if out == nil || resp.Result == nil {
		return nil
	}
	return json.Unmarshal(resp.Result, out)
}
