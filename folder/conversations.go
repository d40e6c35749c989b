package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// conversations is the chat loop's state: Dir/chat and one file under
// Dir/dm/ per current member, each a chatFile, and what it knows of the
// other names under dm/. Owned by the chat loop.
type conversations struct {
	f        *Tree
	watchDir func(dir string) error // watches a log's folder with fsnotify

	chat    *chatFile
	dm      map[string]*chatFile  // current members' files, by name
	byPath  map[string]*chatFile  // chat and dm files, by file path and by log path
	removed map[string]*mutedFile // files of members removed during this run, by name
	strays  map[string]bool       // names under dm/ already warned about as no member's
	badName map[string]bool       // names from Conversations already logged as unusable
}

// mutedFile is the file of a member removed during this run: it stays
// for the user to read, is no longer rewritten, and lines added to it are
// not sent.
type mutedFile struct {
	seen []byte // what the file held, complete lines, that was not new
}

// chatLoop owns Dir/chat and Dir/dm/*: it takes the user's new lines to
// Say or SayTo, and rewrites each file as its log after each change on
// either side. Changes and closes after writing (Linux) arrive as events,
// and changes of the members as a signal from the peers loop (at its
// first render and whenever the table changed); a timer runs only
// while a writer holds a file no event covers: every Debounce while a
// replaced file may still be written to, or, without a close watcher,
// while a writer holds a conversation file.
func (f *Tree) chatLoop(ctx context.Context, in <-chan event, members <-chan struct{}, watchDir func(string) error) {
	cs := f.newConversations(watchDir)
	defer cs.closeOrphans()
	cs.start()
	poll := time.NewTimer(f.cfg.Debounce)
	defer poll.Stop()
	for {
		poll.Reset(f.cfg.Debounce)
		if !cs.polled() {
			poll.Stop()
		}
		select {
		case ev, ok := <-in:
			if !ok {
				return
			}
			cs.handle(ev.Path)
		case <-members:
			cs.refresh()
		case <-poll.C:
			cs.poll()
		case <-ctx.Done():
			return
		}
		cs.dropGone()
	}
}

func (f *Tree) newConversations(watchDir func(string) error) *conversations {
	return &conversations{
		f:        f,
		watchDir: watchDir,
		chat:     newChatFile(f.log, f.chat, f.chatLog, chatName, f.cfg.Syncer.Say),
		dm:       make(map[string]*chatFile),
		byPath:   make(map[string]*chatFile),
		removed:  make(map[string]*mutedFile),
		strays:   make(map[string]bool),
		badName:  make(map[string]bool),
	}
}

// start syncs chat. The dm files are made at the first members signal,
// which the peers loop sends when it first renders the table: members
// are read after that table, so no change between the two is missed.
func (cs *conversations) start() {
	cs.byPath[cs.chat.path] = cs.chat
	cs.byPath[cs.chat.logPath] = cs.chat
	cs.chat.start()
}

// all calls fn for chat and each member's file.
func (cs *conversations) all(fn func(*chatFile)) {
	fn(cs.chat)
	for _, c := range cs.dm {
		fn(c)
	}
}

// polled says whether some file must be checked again without an event.
func (cs *conversations) polled() bool {
	some := false
	cs.all(func(c *chatFile) { some = some || c.polled() })
	return some
}

// poll checks again every file that asked for it.
func (cs *conversations) poll() {
	cs.all(func(c *chatFile) {
		if c.polled() {
			c.reconcile()
		}
	})
}

// closeOrphans closes every orphan of every file.
func (cs *conversations) closeOrphans() {
	cs.all((*chatFile).closeOrphans)
}

// handle acts on a debounced change of path: a conversation file or its
// log, another name under dm/, or "" after missed events (every file).
func (cs *conversations) handle(path string) {
	if path == "" {
		cs.all((*chatFile).reconcile)
		for name := range cs.removed {
			cs.checkRemoved(name)
		}
		return
	}
	if c := cs.byPath[path]; c != nil {
		c.reconcile()
		return
	}
	if filepath.Dir(path) != cs.f.dm {
		return
	}
	name := filepath.Base(path)
	if cs.removed[name] != nil {
		cs.checkRemoved(name)
		return
	}
	cs.checkStray(name)
}

// refresh reads the members from the engine and adds or removes their
// files. A member whose log path changed is removed and added again, so
// its file follows the new log.
func (cs *conversations) refresh() {
	want := make(map[string]string) // name to absolute log path
	for _, conv := range cs.f.cfg.Syncer.Conversations() {
		if logPath, ok := cs.usable(conv); ok {
			want[conv.Name] = logPath
		}
	}
	for name, c := range cs.dm {
		if want[name] != c.logPath {
			cs.remove(name)
		}
	}
	for name, logPath := range want {
		if cs.dm[name] == nil {
			cs.add(name, logPath)
		}
	}
}

// dropGone removes the files whose member SayTo said is gone, before
// the next refresh would: their later lines get the removed member's
// warning instead of a failed send each.
func (cs *conversations) dropGone() {
	for name, c := range cs.dm {
		if c.gone {
			cs.remove(name)
		}
	}
}

// usable checks a conversation from the engine: its name must be one
// file name, and its log path absolute-able. An unusable one is logged
// once and skipped.
func (cs *conversations) usable(conv Conversation) (logPath string, ok bool) {
	logPath, err := filepath.Abs(conv.Log)
	if err == nil && !validDMName(conv.Name) {
		err = errors.New("not a file name")
	}
	if err == nil {
		return logPath, true
	}
	if !cs.badName[conv.Name] {
		cs.badName[conv.Name] = true
		cs.f.log.Warn("member has no dm file", "name", conv.Name, "err", err, "fix", "nothing here: the engine gave a name unusable as a file name; report it")
	}
	return "", false
}

// validDMName reports whether name is one plain file name: not empty,
// "." or "..", and without a separator or NUL.
func validDMName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\x00"+string(filepath.Separator))
}

// errMemberGone marks a SayTo that failed because the name is no
// member's any more (it wraps the engine's error). Only dm files' say
// returns it: chat's Say failing with a missing file is another matter.
var errMemberGone = errors.New("no longer a member")

// sayTo returns the say func of a member's file.
func (cs *conversations) sayTo(name string) func(string) error {
	return func(line string) error {
		err := cs.f.cfg.Syncer.SayTo(name, line)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %w", errMemberGone, err)
		}
		return err
	}
}

// add makes the file of a member and starts following its log.
func (cs *conversations) add(name, logPath string) {
	c := newChatFile(cs.f.log, filepath.Join(cs.f.dm, name), logPath, dmName+"/"+name, cs.sayTo(name))
	cs.watchLog(c)
	cs.dm[name] = c
	cs.byPath[c.path] = c
	cs.byPath[c.logPath] = c
	_, told := cs.removed[name]
	told = told || cs.strays[name]
	delete(cs.removed, name)
	delete(cs.strays, name)
	cur, _ := os.ReadFile(c.path)
	log, _ := c.readLog()
	c.seen = cs.startSeen(c, cur, log, told)
	c.reconcile()
}

// startSeen decides, when a member's file is added, what of the file
// found there is new. As for chat, lines after a copy of the log were
// written while meshfs was stopped and are sent. Anything else the log
// would overwrite is kept aside as name~ and not sent: the history of an
// earlier conversation under this name (its log empty or another), or
// lines the user was told were not sent (the name was a removed member's
// or no member's during this run). Chat sends all of a file whose log is
// empty; a dm file must not send an old conversation to a new member.
func (cs *conversations) startSeen(c *chatFile, cur, log []byte, told bool) []byte {
	switch {
	case bytes.HasPrefix(log, cur):
		return cur // the log or an older copy: nothing new, nothing lost
	case !told && len(log) > 0 && bytes.HasPrefix(cur, log):
		return log
	case cs.keepAside(c):
		return nil
	default:
		return cur
	}
}

// keepAside renames a member's file to the first free name of name~,
// name.1~, ... name.9~ (names ending in ~ are no stray's), so the log
// can replace it without losing the user's text.
func (cs *conversations) keepAside(c *chatFile) bool {
	var err error
	for i := range 10 {
		aside := c.path + "~"
		if i > 0 {
			aside = c.path + "." + strconv.Itoa(i) + "~"
		}
		if _, lerr := os.Lstat(aside); !errors.Is(lerr, fs.ErrNotExist) {
			continue
		}
		if err = os.Rename(c.path, aside); err == nil {
			c.log.Info("dm file kept aside: its text is no part of the conversation's log", "aside", filepath.Base(aside))
			return true
		}
		break
	}
	c.log.Warn("dm file replaced by its log; its earlier text is lost", "err", err, "fix", "remove the dm/<name>~ files you no longer need")
	return false
}

// watchLog has events for the log's path routed to the chat loop, and
// watches its folder, made if missing (the log itself may not exist yet,
// and a folder that does not exist cannot be watched).
func (cs *conversations) watchLog(c *chatFile) {
	dir := filepath.Dir(c.logPath)
	cs.f.logs.add(c.logPath)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = cs.watchDir(dir)
	}
	if err != nil && !errors.Is(err, fsnotify.ErrClosed) { // closed: the tree is stopping
		c.log.Warn("dm log not watched; messages appear at the next change of the file", "path", c.logPath, "err", err,
			"fix", "check permissions of the state folder (--state), then restart meshfs")
	}
}

// remove stops following a member's file: it stays as it is, and lines
// added to it are not sent.
func (cs *conversations) remove(name string) {
	c := cs.dm[name]
	delete(cs.dm, name)
	delete(cs.byPath, c.path)
	delete(cs.byPath, c.logPath)
	cs.f.logs.remove(c.logPath)
	c.closeOrphans()
	cs.removed[name] = &mutedFile{seen: c.seen}
	c.log.Info("member gone; its dm file stays and sends nothing")
}

// checkRemoved warns once per change that added complete lines to the
// file of a removed member.
func (cs *conversations) checkRemoved(name string) {
	m := cs.removed[name]
	cur, err := os.ReadFile(filepath.Join(cs.f.dm, name))
	if err != nil {
		return // gone or unreadable: nothing of it can be sent anyway
	}
	lines, taken := chatTake(m.seen, cur, true)
	m.seen = taken
	if len(lines) > 0 {
		cs.f.log.Warn("private lines not sent: no longer a member", "file", dmName+"/"+name, "lines", len(lines),
			"fix", "nothing: the member was removed (see the peers file); the lines stay in the file")
	}
}

// checkStray warns once about a file under dm/ that is no member's.
// Hidden names (editors' swap files, our own temporary files) and
// backups ending in ~ (editors', and ours from keepAside) are skipped,
// and so is a name already gone.
func (cs *conversations) checkStray(name string) {
	if cs.strays[name] || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return
	}
	if _, err := os.Lstat(filepath.Join(cs.f.dm, name)); errors.Is(err, fs.ErrNotExist) {
		return
	}
	cs.strays[name] = true
	cs.f.log.Warn("file under dm/ is no member's; nothing in it is sent", "file", dmName+"/"+name,
		"fix", "the names under dm/ are the members'; see the peers file")
}

// logSet is the set of log paths whose events go to the chat loop. The
// chat loop changes it; the event reader reads it.
type logSet struct {
	mu    sync.Mutex
	paths map[string]bool // guarded by mu
}

func newLogSet(paths ...string) *logSet {
	s := &logSet{paths: make(map[string]bool)}
	for _, p := range paths {
		s.paths[p] = true
	}
	return s
}

func (s *logSet) add(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths[path] = true
}

func (s *logSet) remove(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.paths, path)
}

func (s *logSet) has(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}
