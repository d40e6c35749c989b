package sync

import "testing"

func TestFailpointArmed(t *testing.T) {
	tests := []struct {
		name, env string
		want      bool
	}{
		{"after-write", "after-write", true},
		{"after-fsync", "after-fsync", true},
		{"after-rename", "after-rename", true},
		{"after-write", "", false},
		{"after-write", "after-fsync", false},
		{"after-write", "after-write-x", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got := failpointArmed(tc.name, tc.env); got != tc.want {
			t.Errorf("failpointArmed(%q, %q) = %v, want %v", tc.name, tc.env, got, tc.want)
		}
	}
}

func TestFailpointExits(t *testing.T) {
	exited := 0
	old := failpointExit
	failpointExit = func() { exited++ }
	defer func() { failpointExit = old }()
	t.Setenv(failpointEnv, "after-fsync")
	failpoint("after-write")
	failpoint("after-fsync")
	if exited != 1 {
		t.Errorf("failpoint exits = %d, want 1", exited)
	}
}
