// Package ui serves the page of a mount: one HTML page, with its script and
// style embedded in the binary, that shows the members as a small graph,
// the transfers with their progress, the files that arrived lately and the
// chat room, and posts chat lines. It is off unless 'meshfs mount --ui'
// asks for it.
//
// # What it reads
//
// Everything comes from the engine's own state, the value 'meshfs status
// --json' prints (Source.Status), the rendered chat log (Source.ChatLogPath)
// and the files under inbox/. The page keeps no state of its own; a line it
// posts goes through Source.Say, as a line written to the chat file does.
//
// # Who may use it
//
// A request is served only when all of these hold (guard.go): its Host is
// the address bound, in one of its loopback spellings when that is
// loopback; it carries the session cookie, or the token on the first visit,
// which is traded for the cookie and removed from the address by a
// redirect; no Origin or Sec-Fetch-Site header says it comes from another
// site; and a POST carries its own Origin and a JSON body, which a form on
// another page cannot send. No CORS header is ever sent. The server binds a
// loopback address unless Config.AllowRemote says otherwise.
//
// Files are served from inbox/ through an os.Root, so neither "..", an
// absolute name nor a symbolic link leads outside it, and with a sandbox
// Content-Security-Policy, so a received page cannot run script as this
// page.
//
// # Goroutines
//
// New starts the HTTP server's accept loop; net/http starts one goroutine
// per connection. Each event stream runs in its request's goroutine and
// ends when the client goes away or Close is called. Close stops all of
// them and waits.
//
// # Imports
//
// ui reads meshsync.Status, and chat for the errors Say returns. It must
// not import fs, folder or the command.
package ui
