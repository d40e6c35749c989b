package folder

import (
	"slices"
	"testing"
)

func TestPlainChatTake(t *testing.T) {
	const log1 = "[10:00] alice: hi\n"
	const log2 = log1 + "[10:01] carol: incoming\n"
	tests := []struct {
		name      string
		seen, cur string
		partial   bool
		lines     []string
		taken     string
	}{
		{"unchanged", log1, log1, false, nil, log1},
		{"appended", log1, log1 + "hello\n", false, []string{"hello"}, log1 + "hello\n"},
		{"appended two, blank dropped", log1, log1 + "a\n\n  \nb\r\n", false, []string{"a", "b"}, log1 + "a\n\n  \nb\r\n"},
		{"appended without newline", log1, log1 + "tail", false, []string{"tail"}, log1 + "tail"},
		{"written over", log1, "new words\n", false, []string{"new words"}, "new words\n"},
		{"written over with empty", log1, "", false, nil, ""},
		{"first write to an empty file", "", "x\n", false, []string{"x"}, "x\n"},
		{"writer still open: complete lines only", log1, log1 + "done\nhalf", true, []string{"done"}, log1 + "done\n"},
		{"writer still open: no complete line", log1, log1 + "half", true, nil, log1},
		{"writer still open, written over", log1, "one\ntw", true, []string{"one"}, "one\n"},
		// The log grew (an incoming message) but the file still holds what
		// we wrote plus the user's line: only the user's line is new, and
		// the incoming one is not sent back.
		{"concurrent incoming", log1, log1 + "mine\n", false, []string{"mine"}, log1 + "mine\n"},
		// The file was already rewritten with the grown log: nothing new.
		{"rewritten with incoming", log2, log2, false, nil, log2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines, taken := chatTake([]byte(tc.seen), []byte(tc.cur), tc.partial)
			if !slices.Equal(lines, tc.lines) || string(taken) != tc.taken {
				t.Errorf("chatTake(%q, %q, %v) = %q, %q; want %q, %q",
					tc.seen, tc.cur, tc.partial, lines, taken, tc.lines, tc.taken)
			}
		})
	}
}

// TestPlainChatMayCutLine: where mayCutLine says the writers need not be
// looked up, whether one holds the file must not change what is taken.
func TestPlainChatMayCutLine(t *testing.T) {
	const log1 = "[10:00] alice: hi\n"
	tests := []struct {
		seen, cur string
		want      bool
	}{
		{log1, log1, false},
		{log1, log1 + "hello\n", false},
		{log1, log1 + "half", true},
		{log1, log1 + "done\nhalf", true},
		{log1, "written over\n", false},
		{log1, "written ov", true},
		{log1, "", false},
		{"", "x", true},
		{log1 + "more\n", log1, false}, // shorter: written over, complete
	}
	for _, tc := range tests {
		got := mayCutLine([]byte(tc.seen), []byte(tc.cur))
		if got != tc.want {
			t.Errorf("mayCutLine(%q, %q) = %v, want %v", tc.seen, tc.cur, got, tc.want)
		}
		if got {
			continue
		}
		l1, t1 := chatTake([]byte(tc.seen), []byte(tc.cur), true)
		l2, t2 := chatTake([]byte(tc.seen), []byte(tc.cur), false)
		if !slices.Equal(l1, l2) || string(t1) != string(t2) {
			t.Errorf("chatTake(%q, %q) depends on a writer: %q, %q vs %q, %q", tc.seen, tc.cur, l1, t1, l2, t2)
		}
	}
}

func TestPlainChatStartSeen(t *testing.T) {
	const log = "[10:00] alice: hi\n[10:01] bob: yo\n"
	tests := []struct {
		name, cur, want string
	}{
		{"no file", "", ""},
		{"file is the log", log, log},
		{"file is an older log", "[10:00] alice: hi\n", "[10:00] alice: hi\n"},
		{"lines added while stopped", log + "offline line\n", log},
		{"unrelated content", "something else\n", "something else\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chatStartSeen([]byte(tc.cur), []byte(log)); string(got) != tc.want {
				t.Errorf("chatStartSeen(%q) = %q, want %q", tc.cur, got, tc.want)
			}
		})
	}
}
