//go:build linux

package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/meshfs/meshfs/internal/testutil"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestUI drives the --ui page of a real three-member mesh in headless
// Chromium: it shows the members and their links, sends a chat line that
// reaches another member's chat file, follows a file from outbox/ to
// "delivered" at both members, links a file that arrived so it opens from
// inbox/, fits a phone's width, and says why a file waits for a member
// that went offline. Plain HTTP requests check that what comes without the
// token, from another origin, for another host name or to a non-loopback
// address is refused. MESHFS_UI_SCREENSHOT=FILE.png saves the page as a
// PNG, and at a phone's width as FILE-phone.png.
func TestUI(t *testing.T) {
	longTest(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("TestUI needs Debian's chromium at %s (apt-get install chromium; .ci/run installs it): %v", chromiumPath, err)
	}
	c := newCluster(t)
	c.env = append(c.env, "DISPLAY=", "WAYLAND_DISPLAY=") // meshfs ui only prints
	alice := c.start("alice", "--ui", "127.0.0.1:0")
	bob := c.join("bob", alice, "--ui", "127.0.0.1:0")
	carol := c.join("carol", alice, "--ui", "127.0.0.1:0")
	for _, n := range []*node{alice, bob, carol} {
		for _, o := range []*node{alice, bob, carol} {
			if o != n {
				n.waitConnected(o)
			}
		}
	}
	pageURL := alice.pageURL(t)
	b := newBrowser(t)
	b.do(t, chromedp.Navigate(pageURL))
	if got := b.eval(t, `location.href`); strings.Contains(got, "token=") {
		t.Errorf("after opening the printed address the browser shows %s, want the token gone", got)
	}

	t.Run("members and links", func(t *testing.T) {
		for _, name := range []string{"bob", "carol"} {
			b.waitText(t, fmt.Sprintf(`li[data-member=%q]`, name), "online", "direct 127.0.0.1:", " ms")
		}
		b.waitText(t, "#graph", "alice (you)", "bob", "carol", "direct ·")
	})

	t.Run("a line sent from the page reaches bob's chat file", func(t *testing.T) {
		line := "hello from the page " + rand.Text()[:8]
		b.do(t, chromedp.SendKeys(chromedp.CSS("#line"), line), chromedp.Click(chromedp.CSS("#say button")))
		waitContains(t, bob.path("chat"), "alice: "+line)
		b.waitText(t, "#chat", "alice: "+line)
		if v := b.eval(t, `document.getElementById("line").value`); v != "" {
			t.Errorf("the chat box still holds %q after sending", v)
		}
	})

	t.Run("a file from outbox reaches delivered on the page", func(t *testing.T) {
		data := make([]byte, 3<<20)
		rand.Read(data)
		if err := os.WriteFile(alice.path("outbox", "report.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"bob", "carol"} {
			b.waitText(t, fmt.Sprintf(`#transfers li[data-path="report.bin"][data-peer=%q]`, name), "delivered, verified", "3.0 MiB")
		}
	})

	t.Run("an arrival links the file in inbox", func(t *testing.T) {
		if err := os.WriteFile(carol.path("outbox", "note.txt"), []byte("from carol\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := `#arrivals a[href="/inbox/carol/note.txt"]`
		b.waitText(t, link, "carol/note.txt")
		href := b.eval(t, fmt.Sprintf(`document.querySelector(%q).href`, link))
		b.do(t, chromedp.Navigate(href))
		if got := b.eval(t, `document.body.innerText`); strings.TrimSpace(got) != "from carol" {
			t.Errorf("the arrival's link %s opens %q, want carol's file", href, got)
		}
		b.do(t, chromedp.Navigate(strings.TrimSuffix(href, "/inbox/carol/note.txt")+"/"))
		b.waitText(t, "#chat", "alice: hello from the page") // the session cookie still opens the page
	})

	t.Run("fits a phone", func(t *testing.T) {
		b.do(t, chromedp.EmulateViewport(390, 844))
		err := testutil.WaitFor(10*time.Second, func() error {
			if w := b.eval(t, `String(document.documentElement.scrollWidth <= innerWidth)`); w != "true" {
				return errors.New("the page is wider than a 390px screen")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if shot := os.Getenv("MESHFS_UI_SCREENSHOT"); shot != "" {
			b.screenshot(t, strings.TrimSuffix(shot, ".png")+"-phone.png")
		}
		b.do(t, chromedp.EmulateViewport(1100, 820))
	})

	t.Run("refused requests", func(t *testing.T) {
		checkRefused(t, c, alice, pageURL)
	})

	t.Run("a file waiting for a member says why", func(t *testing.T) {
		if err := carol.stop(os.Interrupt); err != nil {
			t.Fatalf("stop carol: %v", err)
		}
		b.waitText(t, `li[data-member="carol"]`, "offline")
		if err := os.WriteFile(alice.path("outbox", "later.txt"), []byte("for carol, later\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b.waitText(t, `#transfers li[data-path="later.txt"][data-peer="carol"]`, "waits: carol is offline")
		b.waitText(t, `#transfers li[data-path="later.txt"][data-peer="bob"]`, "delivered, verified")
		if shot := os.Getenv("MESHFS_UI_SCREENSHOT"); shot != "" {
			b.screenshot(t, shot)
		}
	})
}

// pageURL runs 'meshfs ui' on n and returns the address it prints.
func (n *node) pageURL(t *testing.T) string {
	t.Helper()
	out, err := n.c.meshfs("ui", n.mnt)
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimSpace(out)
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.Contains(u, "?token=") {
		t.Fatalf("meshfs ui printed %q, want http://127.0.0.1:PORT/?token=...", out)
	}
	return u
}

// checkRefused sends what another user or another site could send, and
// expects nothing to get through.
func checkRefused(t *testing.T, c *cluster, n *node, pageURL string) {
	u, _ := url.Parse(pageURL)
	base := "http://" + u.Host
	jar, _ := cookiejar.New(nil)
	session := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	if code, _ := get(t, session, pageURL, nil, ""); code != http.StatusOK {
		t.Fatalf("GET the printed address = %d, want 200", code)
	}
	none := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		name   string
		client *http.Client
		url    string
		header map[string]string
		host   string
		want   int
	}{
		{"without the token", none, base + "/", nil, "", http.StatusUnauthorized},
		{"events without the token", none, base + "/events", nil, "", http.StatusUnauthorized},
		{"a file without the token", none, base + "/inbox/carol/note.txt", nil, "", http.StatusUnauthorized},
		{"with a foreign Origin", session, base + "/events", map[string]string{"Origin": "http://evil.example"}, "", http.StatusForbidden},
		{"for a foreign Host", session, base + "/", nil, "evil.example:" + u.Port(), http.StatusMisdirectedRequest},
		{"a path out of inbox", session, base + "/inbox/%2e%2e/outbox/report.bin", nil, "", http.StatusNotFound},
	}
	for _, tc := range tests {
		if code, body := get(t, tc.client, tc.url, tc.header, tc.host); code != tc.want {
			t.Errorf("%s: GET %s = %d %q, want %d", tc.name, tc.url, code, body, tc.want)
		}
	}
	if code := postChat(t, session, base, "http://evil.example", "posted from elsewhere"); code != http.StatusForbidden {
		t.Errorf("a chat post with a foreign Origin = %d, want 403", code)
	}
	if code := postChat(t, session, base, base, "posted here"); code != http.StatusNoContent {
		t.Errorf("a chat post from the page's origin = %d, want 204", code)
	}
	waitContains(t, n.path("chat"), "alice: posted here") // after the refused one, which must be absent
	if data, _ := os.ReadFile(n.path("chat")); strings.Contains(string(data), "posted from elsewhere") {
		t.Error("a chat post with a foreign Origin reached the chat")
	}
	checkNotRemote(t, c, u.Port())
}

// checkNotRemote: the page is not reachable on this machine's other
// addresses, and a non-loopback --ui without --ui-allow-remote does not
// start.
func checkNotRemote(t *testing.T, c *cluster, port string) {
	ip := nonLoopbackIP(t)
	if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("the page answers on %s:%s, want loopback only", ip, port)
	}
	dir := t.TempDir()
	cmd := exec.Command(meshfsBin, "mount", filepath.Join(dir, "mnt"), "--no-fuse", "--state", filepath.Join(dir, "state"),
		"--ui", net.JoinHostPort(ip, "0"))
	cmd.Env = c.env
	os.Mkdir(filepath.Join(dir, "mnt"), 0o700)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--ui-allow-remote") {
		t.Errorf("mount --ui %s:0 = %v %q, want exit 2 naming --ui-allow-remote", ip, err, out)
	}
}

// nonLoopbackIP returns an IPv4 address of this machine that is not
// loopback.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to try the page on")
	return ""
}

func get(t *testing.T, c *http.Client, u string, header map[string]string, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("GET %s carries Access-Control-Allow-Origin %q", u, v)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

func postChat(t *testing.T, c *http.Client, base, origin, text string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/chat", strings.NewReader(fmt.Sprintf("{\"text\":%q}", text)))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// browser is one headless Chromium with one tab.
type browser struct {
	ctx context.Context
}

// newBrowser starts Chromium as this environment needs it (root, no GPU,
// no network of its own) with a fresh profile; cleanup stops it.
func newBrowser(t *testing.T) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 820),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, which lives as long as its
	// context: it takes no timeout of its own (chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// do runs actions on the tab, bounded.
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval returns a JavaScript expression's string value.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// waitText polls until the element sel exists and its text holds each of
// want.
func (b *browser) waitText(t *testing.T, sel string, want ...string) {
	t.Helper()
	expr := fmt.Sprintf(`(e => e ? e.textContent : "")(document.querySelector(%q))`, sel)
	err := testutil.WaitFor(60*time.Second, func() error {
		got := b.eval(t, expr)
		for _, w := range want {
			if !strings.Contains(got, w) {
				return fmt.Errorf("%s shows %q, want %q in it", sel, got, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// screenshot saves the page as a PNG.
func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
