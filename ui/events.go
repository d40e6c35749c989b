package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// The event stream (GET /events, server-sent events): "status" carries the
// Status value whenever it changed, at most once a tick; "chat" carries new
// lines of the chat log, the last ChatBacklog bytes first. A comment goes
// out after keepAlive of silence, so a client gone without a word is
// noticed by a failed write.

// keepAlive is the longest silence on a stream.
const keepAlive = 15 * time.Second

// maxChatRead bounds the chat log read in one tick; the rest follows on
// the next.
const maxChatRead = 256 << 10

// stream writes events to one client.
type stream struct {
	w    extendingWriter
	last time.Time // last write, for keepAlive
}

// send writes one event and flushes it.
func (st *stream) send(event string, data []byte) error {
	if _, err := fmt.Fprintf(st.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	st.last = time.Now()
	return st.w.rc.Flush()
}

// ping writes a comment line.
func (st *stream) ping() error {
	if _, err := io.WriteString(st.w, ": ping\n\n"); err != nil {
		return err
	}
	st.last = time.Now()
	return st.w.rc.Flush()
}

// events serves one stream until the client leaves, a write fails or the
// server closes (the request's context ends with Close).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	log, err := openChatTail(s.cfg.Source.ChatLogPath(), s.cfg.ChatBacklog)
	if err != nil {
		s.log.Warn("chat log not readable for the page", "err", err, "fix", "check the state folder; the page shows no chat meanwhile")
		http.Error(w, "the chat log is not readable; the node's log says why", http.StatusInternalServerError)
		return
	}
	defer log.close()
	w.Header().Set("Content-Type", "text/event-stream")
	st := &stream{w: extendingWriter{w, http.NewResponseController(w)}}
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	var last []byte
	for {
		if err := s.update(st, log, &last); err != nil {
			s.log.Debug("event stream ended", "err", err)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// update sends what changed since the last tick: the status if it differs
// from last, new chat lines, or a keep-alive.
func (s *Server) update(st *stream, log *chatTail, last *[]byte) error {
	status, err := json.Marshal(s.cfg.Source.Status())
	if err != nil {
		return err
	}
	if !bytes.Equal(status, *last) {
		if err := st.send("status", status); err != nil {
			return err
		}
		*last = status
	}
	lines, err := log.read()
	if err != nil {
		return err
	}
	if len(lines) > 0 {
		data, err := json.Marshal(lines)
		if err != nil {
			return err
		}
		if err := st.send("chat", data); err != nil {
			return err
		}
	}
	if time.Since(st.last) >= keepAlive {
		return st.ping()
	}
	return nil
}

// chatTail follows the chat log, which only grows: it hands out whole
// lines from where it last stopped.
type chatTail struct {
	f   *os.File
	off int64 // the first byte not handed out
}

// openChatTail opens the log at its last backlog bytes, from the first
// whole line there.
func openChatTail(path string, backlog int64) (*chatTail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t := &chatTail{f: f, off: max(0, fi.Size()-backlog)}
	if t.off > 0 {
		if err := t.skipCut(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return t, nil
}

// skipCut moves past the line the backlog's start cuts, which is not shown.
func (t *chatTail) skipCut() error {
	buf := make([]byte, maxChatRead)
	n, err := t.f.ReadAt(buf, t.off)
	if err != nil && err != io.EOF {
		return err
	}
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		t.off += int64(i + 1)
	}
	return nil
}

// read returns the whole lines written since the last read, without
// their newlines; a line still being written waits for the next read.
func (t *chatTail) read() ([]string, error) {
	buf := make([]byte, maxChatRead)
	n, err := t.f.ReadAt(buf, t.off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	end := bytes.LastIndexByte(buf[:n], '\n')
	if end < 0 {
		return nil, nil
	}
	t.off += int64(end + 1)
	return splitLines(buf[:end]), nil
}

func splitLines(b []byte) []string {
	var out []string
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		out = append(out, string(line))
	}
	return out
}

func (t *chatTail) close() { t.f.Close() }
