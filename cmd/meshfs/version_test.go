package main

import (
	"runtime/debug"
	"testing"
)

func TestBuildCommit(t *testing.T) {
	setting := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "unknown"},
		{"no vcs stamp", setting("GOOS", "linux"), "unknown"},
		{"clean", setting("vcs.revision", "40de9eb5", "vcs.modified", "false"), "40de9eb5"},
		{"modified", setting("vcs.modified", "true", "vcs.revision", "40de9eb5"), "40de9eb5-dirty"},
	}
	for _, tc := range tests {
		if got := buildCommit(tc.info); got != tc.want {
			t.Errorf("%s: buildCommit = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReleaseVersion(t *testing.T) {
	installed := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}
	checkout := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	if got := releaseVersion(installed); got != "v1.4.0" {
		t.Errorf("go install build: %q, want v1.4.0", got)
	}
	if got := releaseVersion(checkout); got != "devel" {
		t.Errorf("checkout build: %q, want devel", got)
	}
	if got := releaseVersion(nil); got != "devel" {
		t.Errorf("no build info: %q, want devel", got)
	}
}
