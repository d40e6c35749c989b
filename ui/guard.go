package ui

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strconv"
)

// guard decides which requests reach the page: see "Who may use it" in
// doc.go.
type guard struct {
	port      string
	ip        net.IP // the address bound
	canonical string // HOST:PORT for the URL printed
}

func newGuard(ip net.IP, port int) guard {
	p := strconv.Itoa(port)
	canon := ip
	if ip.IsUnspecified() { // the URL is opened on this machine
		canon = net.IPv4(127, 0, 0, 1)
	}
	return guard{port: p, ip: ip, canonical: net.JoinHostPort(canon.String(), p)}
}

// hostOK reports whether a Host header names this server: the IP bound
// (any IP when bound to all of them) or localhost, with the port bound. A
// name other than localhost is refused, so a page whose DNS name was made
// to point here (DNS rebinding) is not served.
func (g guard) hostOK(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port != g.port {
		return false
	}
	if host == "localhost" {
		return g.ip.IsLoopback() || g.ip.IsUnspecified()
	}
	ip := net.ParseIP(host)
	return ip != nil && (g.ip.IsUnspecified() || ip.Equal(g.ip))
}

// crossSite reports whether the browser says the request comes from
// another origin: Sec-Fetch-Site other than same-origin or none (an
// address typed or opened from outside the browser), or an Origin that is
// not this server's.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	return origin != "" && origin != "http://"+r.Host
}

// postOK reports whether a POST is the page's own: it names its origin and
// carries JSON, which a form on another page cannot send without asking
// first (and no CORS answer ever allows it).
func postOK(r *http.Request) bool {
	if r.Header.Get("Origin") != "http://"+r.Host {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// protect wraps the page's handlers with the checks every request passes,
// in order: Host, origin, token or session cookie, and for a POST its
// origin and body type.
func (s *Server) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setCommonHeaders(w)
		switch {
		case !s.guard.hostOK(r.Host):
			http.Error(w, "this server does not answer for that host name", http.StatusMisdirectedRequest)
		case crossSite(r):
			http.Error(w, "requests from other sites are refused", http.StatusForbidden)
		case r.URL.Query().Has("token"):
			s.login(w, r)
		case !s.hasSession(r):
			http.Error(w, "open the address 'meshfs ui MOUNTPOINT' prints", http.StatusUnauthorized)
		case r.Method == http.MethodPost && !postOK(r):
			http.Error(w, "a post must come from this page, as JSON", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// login trades the token in the address for the session cookie and
// redirects to the same page without it, so the token leaves the address
// bar and the history.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !equal(r.URL.Query().Get("token"), s.token) {
		http.Error(w, "wrong token: open the address 'meshfs ui MOUNTPOINT' prints", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: s.session, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	u := *r.URL
	q := u.Query()
	q.Del("token")
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
}

func (s *Server) hasSession(r *http.Request) bool {
	c, err := r.Cookie(s.cookie)
	return err == nil && equal(c.Value, s.session)
}

// setCommonHeaders keeps responses out of caches and frames, and off other
// sites' Referer.
func setCommonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
}
