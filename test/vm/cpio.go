package vm

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// cpioWriter writes the "newc" cpio format, the one the kernel unpacks as
// an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
// It is written here rather than taken from Debian's cpio so that the
// harness needs nothing beyond QEMU. Parent directories are added once,
// before the first entry below them, because the kernel creates no
// directories implicitly.
type cpioWriter struct {
	w    *bufio.Writer
	n    int64 // bytes written, for the 4-byte alignment
	ino  uint32
	dirs map[string]bool
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{".": true, "/": true}}
}

// header writes one entry's header and name, padded to 4 bytes.
func (c *cpioWriter) header(name string, mode uint32, size int64) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	if _, err := fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0); err != nil {
		return err
	}
	c.n += 110
	if err := c.write([]byte(name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// clean turns a guest path into the relative form the archive uses.
func clean(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("guest path %q is not absolute", p)
	}
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" {
		return "", fmt.Errorf("guest path %q names the root", p)
	}
	return p, nil
}

// mkdirAll adds dir and its missing parents.
func (c *cpioWriter) mkdirAll(dir string) error {
	if c.dirs[dir] {
		return nil
	}
	if err := c.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	c.dirs[dir] = true
	return c.header(dir, 0o040755, 0)
}

// Dir adds a directory at guest path p.
func (c *cpioWriter) Dir(p string) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	return c.mkdirAll(name)
}

// Bytes adds a regular file at guest path p with the given content.
func (c *cpioWriter) Bytes(p string, mode fs.FileMode, data []byte) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := c.header(name, 0o100000|uint32(mode.Perm()), int64(len(data))); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

// File adds the host file src at guest path p, keeping its permissions.
func (c *cpioWriter) File(p, src string) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := c.header(name, 0o100000|uint32(st.Mode().Perm()), st.Size()); err != nil {
		return err
	}
	n, err := io.Copy(c.w, f)
	c.n += n
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if n != st.Size() {
		return fmt.Errorf("%s changed size while archived", src)
	}
	return c.pad()
}

// Symlink adds a symbolic link at guest path p pointing at target.
func (c *cpioWriter) Symlink(p, target string) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := c.header(name, 0o120777, int64(len(target))); err != nil {
		return err
	}
	if err := c.write([]byte(target)); err != nil {
		return err
	}
	return c.pad()
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *cpioWriter) Close() error {
	if err := c.header("TRAILER!!!", 0, 0); err != nil {
		return err
	}
	return c.w.Flush()
}
