package main

import (
	"errors"
	"testing"
)

func TestBrowserOpener(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/xdg-open", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name string
		env  map[string]string
		look func(string) (string, error)
		want string
	}{
		{"X11", map[string]string{"DISPLAY": ":0"}, found, "/usr/bin/xdg-open"},
		{"Wayland", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, found, "/usr/bin/xdg-open"},
		{"no session", nil, found, ""},
		{"no xdg-open", map[string]string{"DISPLAY": ":0"}, missing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := browserOpener(func(k string) string { return tc.env[k] }, tc.look)
			if got != tc.want {
				t.Errorf("browserOpener(%v) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}
