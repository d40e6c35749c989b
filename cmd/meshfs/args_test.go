package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestFlagsFirst(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"flags after the mount point", "meshfs mount /m --listen 8001 --join h:1",
			"meshfs mount --listen 8001 --join h:1 -- /m"},
		{"bool flag takes no value", "meshfs mount /m --no-fuse --name a",
			"meshfs mount --no-fuse --name a -- /m"},
		{"flag=value form", "meshfs mount /m --listen=8001", "meshfs mount --listen=8001 -- /m"},
		{"already in order", "meshfs invite --ttl 1h /m", "meshfs invite --ttl 1h -- /m"},
		{"two positionals", "meshfs remove /m carol", "meshfs remove -- /m carol"},
		{"double dash keeps a dash name", "meshfs remove /m -- -odd", "meshfs remove -- /m -odd"},
		{"a subcommand's flags", "meshfs service install /m --listen 8001 --no-start",
			"meshfs service install --listen 8001 --no-start -- /m"},
		{"a subcommand's bool flag", "meshfs service install /m --no-fuse --name a",
			"meshfs service install --no-fuse --name a -- /m"},
		{"unknown command untouched", "meshfs frobnicate /m --x", "meshfs frobnicate /m --x"},
		{"no command", "meshfs --help", "meshfs --help"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := flagsFirst(app, strings.Fields(tc.in))
			if want := strings.Fields(tc.want); !slices.Equal(got, want) {
				t.Errorf("flagsFirst(%q) = %q, want %q", tc.in, got, want)
			}
		})
	}
}
