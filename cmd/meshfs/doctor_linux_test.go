package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckInotify(t *testing.T) {
	tests := []struct {
		name, content string
		status, fix   string
	}{
		{"low", "8192\n", statusWarn, "sudo sysctl -w fs.inotify.max_user_watches=524288"},
		{"enough", "524288\n", statusOK, ""},
		{"at the line", "65536\n", statusOK, ""},
		{"garbage", "lots\n", statusWarn, "sysctl fs.inotify.max_user_watches"},
		{"unreadable", "", statusWarn, "--no-fuse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "max_user_watches")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f := checkInotify(path)
			if f.Status != tc.status || !strings.Contains(f.Fix, tc.fix) {
				t.Errorf("checkInotify(%q) = %+v, want %s with a fix containing %q", tc.content, f, tc.status, tc.fix)
			}
		})
	}
}
