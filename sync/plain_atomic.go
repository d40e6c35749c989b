package sync

import (
	"fmt"
	"os"
)

// plainWriteAtomic replaces path with data by writing tmp and renaming it
// over path, so a reader sees the old file or the new one, never half.
func plainWriteAtomic(path, tmp string, data []byte, perm os.FileMode) error {
	if err := os.WriteFile(tmp, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
