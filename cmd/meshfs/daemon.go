package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/folder"
	meshfs "github.com/meshfs/meshfs/fs"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/portmap"
	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/meshfs/meshfs/ui"
)

// The wiring: *mesh.Node is sync's transport, and *meshsync.Engine is both
// the node's event handler and the syncer behind the FUSE tree.
var (
	_ meshsync.Transport = (*mesh.Node)(nil)
	_ mesh.Handler       = (*meshsync.Engine)(nil)
	_ meshfs.Syncer      = fuseSyncer{}
	_ folder.Syncer      = folderSyncer{}
	_ ui.Source          = (*meshsync.Engine)(nil)
)

// fuseSyncer and folderSyncer are the engine as each frontend declares its
// syncer: the frontends import no meshfs package, so each has its own
// Conversation type, which these convert to.
type (
	fuseSyncer   struct{ *meshsync.Engine }
	folderSyncer struct{ *meshsync.Engine }
)

func (s fuseSyncer) Conversations() []meshfs.Conversation {
	return convert(s.Engine.Conversations(), func(c meshsync.Conversation) meshfs.Conversation {
		return meshfs.Conversation{Name: c.Name, Log: c.Log}
	})
}

func (s folderSyncer) Conversations() []folder.Conversation {
	return convert(s.Engine.Conversations(), func(c meshsync.Conversation) folder.Conversation {
		return folder.Conversation{Name: c.Name, Log: c.Log}
	})
}

func convert[A, B any](in []A, f func(A) B) []B {
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}

// daemon is one running node: mesh, sync engine, the tree (FUSE or plain
// folder) and the control socket.
type daemon struct {
	opts    mountOptions
	log     *slog.Logger
	lock    *os.File
	node    *mesh.Node
	engine  *meshsync.Engine
	fuse    *meshfs.Server     // nil in plain-folder mode
	folder  context.CancelFunc // stops the plain-folder watcher; nil with FUSE
	control *controlServer
	page    *ui.Server      // the --ui page; nil without it
	mapper  *portmap.Mapper // keeps the listen port forwarded; nil when off
	// mapProblem says why there is no mapper; set before the engine reads it.
	mapProblem string
	done       chan error    // the tree stopped by itself (external unmount, watcher error)
	stop       chan struct{} // 'meshfs unmount' asked us to stop
	wg         sync.WaitGroup
	closing    sync.Once

	tree  atomic.Pointer[meshfs.Server] // the FUSE server once mounted, for sync's OnChange and Writing
	plain atomic.Pointer[folder.Tree]   // the plain folder once made, for sync's Writing
}

// startDaemon brings a node up step by step; on any error it tears down what
// it started, so a failed mount leaves nothing behind. The control socket
// and the page come before the tree: once the mount is visible, 'meshfs invite'
// and 'meshfs ui' work.
func startDaemon(ctx context.Context, opts mountOptions, log *slog.Logger) (*daemon, error) {
	d := &daemon{opts: opts, log: log, done: make(chan error, 1), stop: make(chan struct{})}
	steps := []func(context.Context) error{
		d.checkEnvironment, d.openState, d.startMesh, d.startControl, d.startPage, d.startTree,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			d.shutdown()
			return nil, err
		}
	}
	return d, nil
}

func (d *daemon) checkEnvironment(context.Context) error {
	if !d.opts.noFUSE {
		if err := meshfs.Available(); err != nil {
			return err // it says why, and suggests --no-fuse
		}
	}
	clear := meshfs.ClearStale
	if d.opts.noFUSE {
		clear = func(string) error { return nil }
	}
	return prepareMountpoint(d.opts.mountpoint, clear)
}

func (d *daemon) openState(context.Context) error {
	if err := makePrivateDir(d.opts.stateDir); err != nil {
		return fmt.Errorf("state folder %s: %w", d.opts.stateDir, err)
	}
	lock, err := lockState(d.opts.stateDir)
	d.lock = lock
	if err != nil {
		return err
	}
	return migrateMeshState(d.opts.stateDir) // under the lock: no other node moves files meanwhile
}

// treeRoot is the folder sync reads and writes: a private backing folder
// behind the FUSE mount, or the mount point itself in plain-folder mode.
func (d *daemon) treeRoot() string {
	if d.opts.noFUSE {
		return d.opts.mountpoint
	}
	return filepath.Join(d.opts.stateDir, "tree")
}

func (d *daemon) startMesh(ctx context.Context) error {
	scfg := d.opts.sync
	scfg.Root = d.treeRoot()
	scfg.StateDir = filepath.Join(d.opts.stateDir, "sync")
	scfg.Logger = d.log.With("pkg", "sync")
	scfg.OnChange = func(rel string) { d.tree.Load().Changed(rel) } // a nil Server ignores it
	scfg.Addresses = d.addresses
	scfg.Writing = func(rel string) bool {
		if t := d.plain.Load(); t != nil {
			return t.Writing(rel)
		}
		return d.tree.Load().Writing(rel) // a nil Server knows no writer
	}
	scfg.WritingTo = func(name, rel string) bool {
		if t := d.plain.Load(); t != nil {
			return t.WritingTo(name, rel)
		}
		return d.tree.Load().WritingTo(name, rel)
	}
	engine, err := meshsync.New(scfg)
	if err != nil {
		return err
	}
	d.engine = engine
	mcfg := mesh.DefaultConfig()
	mcfg.StateDir = d.opts.stateDir // mesh keeps its files in STATE/mesh
	mcfg.Name = d.opts.name
	mcfg.Release = releaseVersion(buildInfo())
	mcfg.Listen = d.opts.listen
	mcfg.Join = d.opts.join
	mcfg.Invite = d.opts.invite
	mcfg.Anchor = d.opts.anchor
	mcfg.FullMeshUpTo, mcfg.ActiveView = d.opts.fullMeshUpTo, d.opts.activeView
	mcfg.Handler = engine
	mcfg.Logger = d.log.With("pkg", "mesh")
	node, err := mesh.New(mcfg)
	if err != nil {
		return err
	}
	d.node = node
	if err := node.Start(ctx); err != nil {
		return err
	}
	if err := d.startPortMapping(); err != nil {
		return err
	}
	return engine.Start(node)
}

func (d *daemon) startTree(context.Context) error {
	if d.opts.noFUSE {
		return d.startFolder()
	}
	srv, err := meshfs.Mount(meshfs.Config{
		Mountpoint: d.opts.mountpoint,
		Root:       d.treeRoot(),
		ChatLog:    d.engine.ChatLogPath(),
		Syncer:     fuseSyncer{d.engine},
		Logger:     d.log.With("pkg", "fs"),
		Debug:      d.opts.logLevel <= slog.LevelDebug,
	})
	if err != nil {
		return err
	}
	d.fuse = srv
	d.tree.Store(srv)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		srv.Wait()
		d.done <- nil
	}()
	return nil
}

func (d *daemon) startFolder() error {
	tree, err := folder.New(folder.Config{
		Dir:    d.opts.mountpoint,
		Syncer: folderSyncer{d.engine},
		Logger: d.log.With("pkg", "folder"),
	})
	if err != nil {
		return err
	}
	d.plain.Store(tree)
	ctx, cancel := context.WithCancel(context.Background())
	d.folder = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.done <- tree.Run(ctx)
	}()
	return nil
}

// startPage serves the --ui page over the engine and the tree's inbox/.
func (d *daemon) startPage(context.Context) error {
	if d.opts.uiAddr == "" {
		return nil
	}
	page, err := ui.New(ui.Config{
		Addr:        d.opts.uiAddr,
		AllowRemote: d.opts.uiRemote,
		Source:      d.engine,
		InboxDir:    filepath.Join(d.treeRoot(), "inbox"),
		Logger:      d.log.With("pkg", "ui"),
	})
	if err != nil {
		return err
	}
	d.page = page
	d.log.Info("page served", "addr", page.Addr().String(), "open", "meshfs ui "+d.opts.mountpoint)
	return nil
}

func (d *daemon) startControl(context.Context) error {
	path, err := controlSocket(d.opts.mountpoint)
	if err != nil {
		return err
	}
	d.control, err = listenControl(path, d.handleControl, d.log)
	return err
}

// run serves until a signal, 'meshfs unmount', or an unmount from outside,
// then shuts down in order.
func (d *daemon) run(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("signal received, unmounting")
	case <-d.stop:
		d.log.Info("unmount requested")
	case err = <-d.done:
		d.log.Info("the tree was unmounted from outside")
	}
	d.shutdown()
	return err
}

// shutdown unmounts, stops sync, closes the mesh and waits; it runs once
// and tolerates a partly started daemon.
func (d *daemon) shutdown() {
	d.closing.Do(func() {
		if d.page != nil { // first: its streams read the engine
			d.page.Close()
		}
		if d.fuse != nil {
			if err := d.fuse.Unmount(); err != nil {
				d.log.Warn("unmount failed", "mountpoint", d.opts.mountpoint, "err", err,
					"fix", "close the programs using it, then run fusermount -u (Linux) or umount (macOS) on it")
			}
		}
		if d.folder != nil {
			d.folder()
		}
		d.wg.Wait()
		if d.engine != nil {
			d.engine.Close()
		}
		if d.mapper != nil { // the router stops forwarding before the listener closes
			d.mapper.Close()
		}
		if d.node != nil {
			d.node.Close()
		}
		// The socket goes last: 'meshfs unmount' waits for it to disappear.
		if d.control != nil {
			d.control.Close()
		}
		if d.lock != nil {
			d.lock.Close()
		}
	})
}

// handleControl answers requests from 'meshfs invite/remove/status/unmount'.
func (d *daemon) handleControl(ctx context.Context, req controlRequest) (any, error) {
	switch req.Op {
	case "invite":
		return d.invite(req)
	case "remove":
		p, err := d.node.Remove(req.Peer)
		if err != nil {
			return nil, err
		}
		return removeResult{ID: p.ID.String(), Name: p.Name}, nil
	case "status":
		return d.engine.Status(), nil
	case "doctor":
		return d.doctorReply(), nil
	case "ui":
		if d.page == nil {
			return nil, fmt.Errorf("the page is off: mount with --ui 127.0.0.1:PORT to serve it")
		}
		return uiResult{URL: d.page.URL()}, nil
	case "shutdown":
		select {
		case <-d.stop:
		default:
			close(d.stop)
		}
		return struct{}{}, nil
	}
	return nil, fmt.Errorf("unknown request %q", req.Op)
}

// inviteResult is what 'meshfs invite' prints.
type inviteResult struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	Uses    int       `json:"uses"`
	Join    string    `json:"join"`
	MeshID  string    `json:"mesh_id"`
}

// uiResult is what 'meshfs ui' prints: the page's address with its token.
type uiResult struct {
	URL string `json:"url"`
}

type removeResult struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (d *daemon) invite(req controlRequest) (any, error) {
	inv, err := d.node.Invite(req.TTL, req.Uses)
	if errors.Is(err, mesh.ErrNotAdmin) {
		return nil, errors.New("only the mesh's admin can invite; run 'meshfs invite' on the node that created the mesh")
	}
	if err != nil {
		return nil, err
	}
	return inviteResult{Token: inv.Token, Expires: inv.Expires, Uses: inv.Uses,
		Join: joinAddrs(d.node.JoinAddrs(), d.node.Addresses().Listen), MeshID: d.node.MeshID()}, nil
}
