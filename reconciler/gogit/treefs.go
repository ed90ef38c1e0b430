package gogit

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeFS is a read-only fs.FS over a Git tree object.
type treeFS struct {
	root *object.Tree
	time time.Time
}

var (
	_ fs.FS        = (*treeFS)(nil)
	_ fs.ReadDirFS = (*treeFS)(nil)
	_ fs.StatFS    = (*treeFS)(nil)
)

func (t *treeFS) lookup(op, name string) (*object.Tree, *object.TreeEntry, error) {
	if !fs.ValidPath(name) {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return t.root, nil, nil
	}
	entry, err := t.root.FindEntry(name)
	if err != nil {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if entry.Mode == filemode.Dir {
		sub, err := t.root.Tree(name)
		if err != nil {
			return nil, nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		return sub, entry, nil
	}
	return nil, entry, nil
}

func (t *treeFS) Open(name string) (fs.File, error) {
	dir, entry, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		return &treeDir{fs: t, name: name, tree: dir}, nil
	}
	if entry.Mode != filemode.Regular && entry.Mode != filemode.Executable {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	file, err := t.root.TreeEntryFile(entry)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	// Open by full path: TreeEntryFile resolves by hash, the entry is ours.
	r, err := file.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: fileInfo{name: path.Base(name), mode: entry.Mode, size: file.Size, time: t.time}, r: r}, nil
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	dir, _, err := t.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if dir == nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return t.entries(dir), nil
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	dir, entry, err := t.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		return fileInfo{name: path.Base(name), mode: filemode.Dir, time: t.time}, nil
	}
	size := int64(0)
	if f, err := t.root.TreeEntryFile(entry); err == nil {
		size = f.Size
	}
	return fileInfo{name: path.Base(name), mode: entry.Mode, size: size, time: t.time}, nil
}

func (t *treeFS) entries(dir *object.Tree) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(dir.Entries))
	for _, e := range dir.Entries {
		out = append(out, fs.FileInfoToDirEntry(fileInfo{name: e.Name, mode: e.Mode, time: t.time}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// fileInfo describes a tree entry. Sizes of directory entries are not
// looked up (ReadDir stays cheap); Stat and Open give the real size.
type fileInfo struct {
	name string
	mode filemode.FileMode
	size int64
	time time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) ModTime() time.Time { return i.time }
func (i fileInfo) IsDir() bool        { return i.mode == filemode.Dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() fs.FileMode {
	switch i.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Regular:
		return 0o444
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o444
	}
	return fs.ModeIrregular // submodules and anything else
}

type treeFile struct {
	info fileInfo
	r    io.ReadCloser
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *treeFile) Close() error               { return f.r.Close() }

type treeDir struct {
	fs     *treeFS
	name   string
	tree   *object.Tree
	offset int
}

func (d *treeDir) Stat() (fs.FileInfo, error) {
	return fileInfo{name: path.Base(d.name), mode: filemode.Dir, time: d.fs.time}, nil
}
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *treeDir) Close() error { return nil }

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all := d.fs.entries(d.tree)[d.offset:]
	if n <= 0 {
		d.offset += len(all)
		return all, nil
	}
	if len(all) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(all))
	d.offset += n
	return all[:n], nil
}
