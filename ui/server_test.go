package ui

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfs/meshfs/chat"
	"github.com/meshfs/meshfs/internal/testutil"
	meshsync "github.com/meshfs/meshfs/sync"
)

// fakeSource stands in for the engine.
type fakeSource struct {
	log string // chat log path

	mu   sync.Mutex
	said []string
	err  error // what Say returns
}

func (f *fakeSource) Status() meshsync.Status {
	return meshsync.Status{Self: meshsync.SelfStatus{ID: "id", Name: "alice"},
		Peers: []meshsync.PeerStatus{{Name: "bob", State: "connected", Addr: "127.0.0.1:9"}}}
}

func (f *fakeSource) Say(text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.said = append(f.said, text)
	return nil
}

func (f *fakeSource) ChatLogPath() string { return f.log }

func (f *fakeSource) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.said)
}

// fixture is a server on 127.0.0.1 over a temp tree: inbox/alice/note.txt,
// a link out of inbox/, a partial, and a secret file beside inbox/.
type fixture struct {
	srv  *Server
	src  *fakeSource
	base string // http://127.0.0.1:PORT
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	for name, data := range map[string]string{
		"inbox/alice/note.txt": "hello\n", "inbox/.meshfs-partials/x.part": "partial", "secret.txt": "secret",
		"chat.log": "[2026-01-02 03:04:05] bob: first\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../secret.txt", filepath.Join(inbox, "alice", "escape")); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{log: filepath.Join(dir, "chat.log")}
	srv, err := New(Config{Addr: "127.0.0.1:0", Source: src, InboxDir: inbox, Tick: 10 * time.Millisecond,
		Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &fixture{srv: srv, src: src, base: "http://" + srv.Addr().String(), dir: dir}
}

// client returns an HTTP client that logged in with the token.
func (fx *fixture) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(fx.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "app.js") {
		t.Fatalf("GET the printed URL = %d %q, want 200 and the page", resp.StatusCode, body)
	}
	if resp.Request.URL.RawQuery != "" {
		t.Fatalf("after login the address is %s, want it without the token", resp.Request.URL)
	}
	return c
}

func TestLoginCookie(t *testing.T) {
	fx := newFixture(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(fx.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("GET URL = %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Value == fx.srv.token {
		t.Errorf("cookies = %+v, want one HttpOnly SameSite=Strict session cookie that is not the token", ck)
	}
	fx.client(t) // and the cookie opens the page
}

// TestRefused: what another user, another site or a rebinding name sends
// gets nothing, and no answer carries a CORS header.
func TestRefused(t *testing.T) {
	fx := newFixture(t)
	good := fx.client(t)
	port := strings.TrimPrefix(fx.base, "http://127.0.0.1:")
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		header map[string]string
		host   string
		want   int
	}{
		{"no token", http.DefaultClient, "GET", "/", nil, "", http.StatusUnauthorized},
		{"no token for events", http.DefaultClient, "GET", "/events", nil, "", http.StatusUnauthorized},
		{"no token for a file", http.DefaultClient, "GET", "/inbox/alice/note.txt", nil, "", http.StatusUnauthorized},
		{"wrong token", http.DefaultClient, "GET", "/?token=nope", nil, "", http.StatusForbidden},
		{"foreign host", good, "GET", "/", nil, "evil.example:" + port, http.StatusMisdirectedRequest},
		{"foreign host with the token", http.DefaultClient, "GET", "/?token=" + fx.srv.token, nil, "evil.example:" + port, http.StatusMisdirectedRequest},
		{"other port", good, "GET", "/", nil, "127.0.0.1:1", http.StatusMisdirectedRequest},
		{"foreign origin", good, "GET", "/events", map[string]string{"Origin": "http://evil.example"}, "", http.StatusForbidden},
		{"cross-site fetch", good, "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", http.StatusForbidden},
		{"same-site other port", good, "GET", "/", map[string]string{"Sec-Fetch-Site": "same-site"}, "", http.StatusForbidden},
		{"post without origin", good, "POST", "/chat", map[string]string{"Content-Type": "application/json"}, "", http.StatusForbidden},
		{"post from a form", good, "POST", "/chat", map[string]string{"Origin": fx.base, "Content-Type": "application/x-www-form-urlencoded"}, "", http.StatusForbidden},
		{"post with foreign origin", good, "POST", "/chat", map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"}, "", http.StatusForbidden},
		{"inbox parent", good, "GET", "/inbox/%2e%2e/secret.txt", nil, "", http.StatusNotFound},
		{"inbox link out", good, "GET", "/inbox/alice/escape", nil, "", http.StatusNotFound},
		{"inbox partials", good, "GET", "/inbox/.meshfs-partials/x.part", nil, "", http.StatusNotFound},
		{"inbox folder", good, "GET", "/inbox/alice", nil, "", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, fx.base+tc.path, strings.NewReader(`{"text":"x"}`))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, resp.StatusCode, body, tc.want)
			}
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("%s %s carries Access-Control-Allow-Origin %q", tc.method, tc.path, v)
			}
			if strings.Contains(string(body), fx.dir) || strings.Contains(string(body), "secret") {
				t.Errorf("%s %s answers %q, which shows local files", tc.method, tc.path, body)
			}
		})
	}
	if got := fx.src.lines(); len(got) != 0 {
		t.Errorf("refused posts said %q", got)
	}
}

func TestInboxFile(t *testing.T) {
	fx := newFixture(t)
	resp, err := fx.client(t).Get(fx.base + "/inbox/alice/note.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello\n" {
		t.Errorf("GET /inbox/alice/note.txt = %d %q, want 200 %q", resp.StatusCode, body, "hello\n")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "sandbox" {
		t.Errorf("a received file is served with Content-Security-Policy %q, want sandbox", csp)
	}
}

// post sends text as the page does.
func (fx *fixture) post(t *testing.T, c *http.Client, text string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", fx.base+"/chat", strings.NewReader(fmt.Sprintf("{\"text\":%q}", text)))
	req.Header.Set("Origin", fx.base)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestPostChat(t *testing.T) {
	fx := newFixture(t)
	c := fx.client(t)
	if code, body := fx.post(t, c, "one\ntwo"); code != http.StatusNoContent {
		t.Fatalf("post = %d %q, want 204", code, body)
	}
	if got, want := fx.src.lines(), []string{"one", "two"}; !slices.Equal(got, want) {
		t.Errorf("said %q, want %q: each line as the chat file says it", got, want)
	}
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("say: %w", chat.ErrTooLong), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("say: %w", chat.ErrBadUTF8), http.StatusBadRequest},
		{errors.New("say: write " + fx.dir + "/chat.wal: no space left on device"), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		fx.src.mu.Lock()
		fx.src.err = tc.err
		fx.src.mu.Unlock()
		code, body := fx.post(t, c, "x")
		if code != tc.want || strings.Contains(body, fx.dir) {
			t.Errorf("post with Say failing %v = %d %q, want %d without a local path", tc.err, code, body, tc.want)
		}
	}
}

// event is one server-sent event.
type event struct{ name, data string }

// readEvents sends each event of a stream to a channel until it ends.
func readEvents(body io.Reader) <-chan event {
	ch := make(chan event, 16)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(body)
		var ev event
		for s.Scan() {
			switch line := s.Text(); {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				ch <- ev
				ev = event{}
			}
		}
	}()
	return ch
}

// next waits for the next event named name.
func next(t *testing.T, ch <-chan event, name string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a %s event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10s", name)
		}
	}
}

// TestEvents: a stream starts with the status and the chat so far, follows
// new chat lines, and ends when the server closes.
func TestEvents(t *testing.T) {
	fx := newFixture(t)
	c := fx.client(t)
	c.Timeout = 0 // the stream lasts; Close ends it
	resp, err := c.Get(fx.base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	ch := readEvents(resp.Body)
	if ev := next(t, ch, "status"); !strings.Contains(ev.data, `"name":"bob"`) {
		t.Errorf("status event %s, want the Status value", ev.data)
	}
	if ev := next(t, ch, "chat"); ev.data != `["[2026-01-02 03:04:05] bob: first"]` {
		t.Errorf("first chat event %s, want the log so far", ev.data)
	}
	f, err := os.OpenFile(fx.src.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[2026-01-02 03:04:06] carol: sec") // half a line waits for its end
	f.WriteString("ond\n")
	f.Close()
	if ev := next(t, ch, "chat"); ev.data != `["[2026-01-02 03:04:06] carol: second"]` {
		t.Errorf("next chat event %s, want the new line", ev.data)
	}
	closed := make(chan error, 1)
	go func() { closed <- fx.srv.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s with a stream open")
	}
	for range ch { // the stream ends
	}
}

func TestChatTailBacklog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "chat.log")
	os.WriteFile(p, []byte("aaaa\nbbbb\ncccc\n"), 0o600)
	tail, err := openChatTail(p, 7) // starts inside "bbbb"
	if err != nil {
		t.Fatal(err)
	}
	defer tail.close()
	got, err := tail.read()
	if want := []string{"cccc"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("read() = %q, %v, want %q", got, err, want)
	}
}

func TestNotLoopback(t *testing.T) {
	tests := []struct {
		addr  string
		allow bool
		want  error
	}{
		{"0.0.0.0:0", false, ErrNotLoopback},
		{"[::]:0", false, ErrNotLoopback},
		{"example.com:0", false, nil}, // refused too, for being a name
		{"localhost:0", false, nil},
		{"0.0.0.0:0", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			s, err := New(Config{Addr: tc.addr, AllowRemote: tc.allow, Source: &fakeSource{}, Logger: testutil.Logger(t)})
			if s != nil {
				s.Close()
			}
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("New(%s, allow %v) = %v, want %v", tc.addr, tc.allow, err, tc.want)
			case tc.want == nil && tc.addr == "example.com:0" && err == nil:
				t.Errorf("New(%s) served a host name", tc.addr)
			case tc.want == nil && tc.addr != "example.com:0" && err != nil:
				t.Errorf("New(%s, allow %v) = %v, want it served", tc.addr, tc.allow, err)
			}
		})
	}
}
