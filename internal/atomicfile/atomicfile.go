// Package atomicfile replaces files so that a reader or a crash sees the
// old content or the new, never a part: the bundle client's last good
// bundle and learning's profile snapshot are written this way.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrDirSync wraps the error of syncing the directory after the rename:
// the new content is in place, but a crash could still lose the rename.
// Callers that only need atomicity (not durability) may ignore it; not
// every file system syncs directories.
var ErrDirSync = errors.New("sync directory")

// tempPattern is the os.CreateTemp pattern of Write's temporary files.
func tempPattern(name string) string { return "." + name + ".*.tmp" }

// RemoveLeftovers removes the temporary files of writes of dir/name that
// a crash interrupted.
func RemoveLeftovers(dir, name string) {
	leftovers, _ := filepath.Glob(filepath.Join(dir, tempPattern(name)))
	for _, f := range leftovers {
		_ = os.Remove(f)
	}
}

// Write replaces dir/name with data: a temporary file in the same
// directory, written and synced, renamed over name, then the directory
// synced. Errors name the file; the temporary file never stays behind.
func Write(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrDirSync, dir, err)
	}
	return nil
}
