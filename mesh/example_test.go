package mesh_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// Example starts a new mesh, admits a second node with an invite, and
// sends a chat message and application bytes between them.
func Example() {
	ctx := context.Background()
	dirA, _ := os.MkdirTemp("", "mesh-a")
	dirB, _ := os.MkdirTemp("", "mesh-b")
	defer os.RemoveAll(dirA)
	defer os.RemoveAll(dirB)

	// The first node has no state and no Join: it creates the mesh and is its admin.
	cfgA := mesh.DefaultConfig()
	cfgA.StateDir, cfgA.Name, cfgA.Listen = dirA, "alice", "127.0.0.1:0"
	alice, err := mesh.New(cfgA)
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	if err := alice.Start(ctx); err != nil {
		log.Fatal(err)
	}
	inv, err := alice.Invite(time.Hour, 1)
	if err != nil {
		log.Fatal(err)
	}

	// The second node joins once with the invite; later runs need only Join (or nothing).
	got := make(chan string, 2)
	cfgB := mesh.DefaultConfig()
	cfgB.StateDir, cfgB.Name, cfgB.Listen = dirB, "bob", "127.0.0.1:0"
	cfgB.Join, cfgB.Invite = []string{alice.Addr().String()}, inv.Token
	cfgB.Handler = mesh.HandlerFunc(func(e mesh.Event) {
		switch e := e.(type) {
		case mesh.ChatReceived:
			got <- fmt.Sprintf("chat from %s: %s", e.From.Name, e.Chat.Text)
		case mesh.BytesReceived:
			got <- fmt.Sprintf("%d bytes", len(e.Data))
		}
	})
	bob, err := mesh.New(cfgB)
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()
	if err := bob.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// Wait (at most 10 s) until alice sees bob connected, then talk.
	deadline := time.Now().Add(10 * time.Second)
	for len(alice.Peers()) == 0 || alice.Peers()[0].State != mesh.Connected {
		if time.Now().After(deadline) {
			log.Fatal("bob did not connect to alice within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := alice.SendChat(ctx, bob.ID(), mesh.Chat{Seq: 1, Time: time.Now(), Text: "hello bob"}); err != nil {
		log.Fatal(err)
	}
	if err := alice.SendBytes(ctx, bob.ID(), []byte{1, 2, 3}); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		select {
		case s := <-got:
			fmt.Println(s)
		case <-time.After(10 * time.Second):
			log.Fatal("bob received nothing within 10s")
		}
	}
	// Output:
	// chat from alice: hello bob
	// 3 bytes
}
