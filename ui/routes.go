package ui

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/meshfs/meshfs/chat"
)

// routes is the whole page: the document and its two assets, the event
// stream, the chat post and the files of inbox/, all behind protect.
func (s *Server) routes() http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	mux := http.NewServeMux()
	for route, name := range map[string]string{"GET /{$}": "index.html", "GET /app.js": "app.js", "GET /app.css": "app.css"} {
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) { http.ServeFileFS(w, r, static, name) })
	}
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /chat", s.postChat)
	mux.HandleFunc("GET /inbox/{path...}", s.inboxFile)
	return s.protect(mux)
}

// maxPost bounds a chat post: a few lines of chat.MaxBytes each.
const maxPost = 64 << 10

// chatPost is the body of POST /chat.
type chatPost struct {
	Text string `json:"text"`
}

// postChat says each line of the text, in order, through the engine's Say:
// the same as writing them to the chat file.
func (s *Server) postChat(w http.ResponseWriter, r *http.Request) {
	var p chatPost
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPost)).Decode(&p); err != nil {
		http.Error(w, `want {"text": "..."}`, http.StatusBadRequest)
		return
	}
	for line := range strings.SplitSeq(p.Text, "\n") {
		if err := s.cfg.Source.Say(line); err != nil {
			s.chatError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// chatError answers a refused line with a fixed text: Say's own error may
// name local files.
func (s *Server) chatError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, chat.ErrTooLong):
		http.Error(w, "the line is too long for the chat", http.StatusRequestEntityTooLarge)
	case errors.Is(err, chat.ErrBadUTF8):
		http.Error(w, "the line is not UTF-8", http.StatusBadRequest)
	default:
		s.log.Warn("chat line from the page not stored", "err", err,
			"fix", "check the state folder's disk; the line was not sent")
		http.Error(w, "the line was not stored; the node's log says why", http.StatusInternalServerError)
	}
}

// inboxFile serves one file of inbox/. The os.Root refuses names that
// leave the folder, by ".." or by a symbolic link; the sandbox policy
// keeps a received page from running script as this page.
func (s *Server) inboxFile(w http.ResponseWriter, r *http.Request) {
	rel := r.PathValue("path")
	if !fs.ValidPath(rel) || strings.HasPrefix(rel, ".") { // .meshfs-partials: files not yet received
		http.Error(w, "no such file in inbox/", http.StatusNotFound)
		return
	}
	root, err := os.OpenRoot(s.cfg.InboxDir)
	if err != nil {
		http.Error(w, "no such file in inbox/", http.StatusNotFound)
		return
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		http.Error(w, "no such file in inbox/", http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "not a file: open the files inside it from the folder", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Security-Policy", "sandbox")
	http.ServeContent(extendingWriter{w, http.NewResponseController(w)}, r, fi.Name(), fi.ModTime(), f)
}

// extendingWriter moves the write deadline before each write, so a long
// download or event stream is bounded per write, not in total.
type extendingWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w extendingWriter) Write(p []byte) (int, error) {
	if err := w.rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w extendingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
