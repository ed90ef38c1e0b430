package runtime

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// BusyboxPath is where Debian's busybox-static installs its binary. It must
// be static: the rootfs has no libc. Debian's dynamic `busybox` package
// installs the same path, which is why rootfs checks for an interpreter.
const BusyboxPath = "/bin/busybox"

// InstallHint is the command that installs what this package needs.
const InstallHint = "apt-get install -y runc busybox-static (or hack/install-runtime-deps.sh)"

// applets are the commands the rootfs offers, as symlinks to busybox:
// enough for tests to fork, exec, create, modify, chmod and delete files.
var applets = []string{
	"sh", "cat", "echo", "ls", "chmod", "cp", "mv", "rm", "mkdir", "sleep",
	"touch", "id", "ln", "true", "false", "env", "kill", "head", "grep",
	"stat", "readlink", "test", "wc", "ps", "su",
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// template returns a rootfs built once per test binary and kept, keyed by
// the busybox binary's digest, under the user's cache: Start copies it for
// each container rather than rebuilding it.
func template() (string, error) {
	templateOnce.Do(func() { templateDir, templateErr = buildTemplate() })
	return templateDir, templateErr
}

func buildTemplate() (string, error) {
	sum, err := staticBusybox(BusyboxPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir(), "runtime", "rootfs-"+sum[:16])
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create rootfs cache: %w", err)
	}
	// Build beside the final name and rename: a concurrent test binary
	// sees either no template or a whole one.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return "", fmt.Errorf("create rootfs cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return "", fmt.Errorf("build rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(tmp, "tmp"), 0o777|os.ModeSticky); err != nil {
		return "", fmt.Errorf("build rootfs: %w", err)
	}
	if err := copyFile(BusyboxPath, filepath.Join(tmp, "bin", "busybox"), 0o755); err != nil {
		return "", fmt.Errorf("build rootfs: %w", err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(tmp, "bin", a)); err != nil {
			return "", fmt.Errorf("build rootfs: %w", err)
		}
	}
	// id and su resolve names through these files.
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("build rootfs: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		// Another binary may have won the race: its template is as good.
		if _, serr := os.Stat(filepath.Join(dir, "bin", "busybox")); serr != nil {
			return "", fmt.Errorf("install rootfs template: %w", err)
		}
	}
	return dir, nil
}

// cacheDir is where hack/'s scripts cache what they build:
// $PALISADE_CACHE, by default ~/.cache/palisade.
func cacheDir() string {
	if d := os.Getenv("PALISADE_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "palisade")
	}
	return filepath.Join(os.TempDir(), "palisade-cache")
}

// staticBusybox checks that path is a static binary and returns its
// SHA-256 in hex.
func staticBusybox(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("busybox-static not installed (%w): %s", err, InstallHint)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (Debian's busybox, not busybox-static): %s", path, InstallHint)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyTree copies the template into dst (which must not exist): each
// container writes to a rootfs of its own, so that what a test does in one
// container is seen in no other and never in the template.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
			// Mkdir drops the sticky bit and applies the umask.
			return os.Chmod(target, info.Mode()&(os.ModePerm|os.ModeSticky))
		default:
			return copyFile(path, target, info.Mode().Perm())
		}
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
