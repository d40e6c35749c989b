//go:build !linux

package mesh

// startWatch starts the portable address watcher (pollAddrs), counted in
// n.wg: it compares the address set every pollEvery, so a changed address
// is noticed up to that late.
func (n *Node) startWatch() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go n.pollAddrs()
}
