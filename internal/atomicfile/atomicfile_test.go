package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteJSON(path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(path, map[string]int{"b": 2}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(path, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["b"] != 2 {
		t.Fatalf("read back %v, want map[b:2]", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries, want only state.json", len(entries))
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 && runtime.GOOS != "windows" { // Windows has no permission bits
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestReadJSONMissingAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	v := map[string]int{"keep": 1}
	if err := ReadJSON(filepath.Join(dir, "none.json"), &v); err != nil || v["keep"] != 1 {
		t.Fatalf("missing file: err %v, v %v; want nil and v unchanged", err, v)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if err := ReadJSON(bad, &v); err == nil {
		t.Fatal("corrupt file read without error")
	}
}

func TestWriteIntoMissingFolderFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "file"), nil, 0o600); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
}
