package pr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// maxFileSize bounds what the reader of the base tree returns: policy
// files are small, a huge blob is not one to edit.
const maxFileSize = 16 << 20

// work is a clone of the base branch, in memory.
type work struct {
	repo *git.Repository
	wt   *git.Worktree
	base *object.Commit
	tree *object.Tree
}

func (p *Publisher) auth() transport.AuthMethod {
	if p.secret == "" {
		return nil
	}
	user := p.o.Username
	if user == "" {
		user = "git"
	}
	return &githttp.BasicAuth{Username: user, Password: p.secret}
}

func (p *Publisher) clone(ctx context.Context, c Change) (*work, error) {
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL:           p.o.URL,
		Auth:          p.auth(),
		ReferenceName: plumbing.NewBranchReferenceName(c.Base),
		SingleBranch:  true,
		Depth:         1,
		Tags:          git.NoTags,
		CABundle:      p.ca,
	})
	if err != nil {
		return nil, fmt.Errorf("pr: clone branch %s: %w", c.Base, err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("pr: clone branch %s: %w", c.Base, err)
	}
	w := &work{repo: repo}
	if w.base, err = repo.CommitObject(head.Hash()); err != nil {
		return nil, fmt.Errorf("pr: read commit %s: %w", head.Hash(), err)
	}
	if w.tree, err = w.base.Tree(); err != nil {
		return nil, fmt.Errorf("pr: read tree of %s: %w", head.Hash(), err)
	}
	if w.wt, err = repo.Worktree(); err != nil {
		return nil, fmt.Errorf("pr: worktree: %w", err)
	}
	return w, nil
}

// read returns a file of the base tree.
func (w *work) read(path string) ([]byte, error) {
	f, err := w.tree.File(path)
	if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !f.Mode.IsFile() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	if f.Size > maxFileSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxFileSize)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// holds reports whether the base tree already has files as they are.
func (w *work) holds(files map[string][]byte) (bool, error) {
	for p, want := range files {
		got, err := w.read(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if want != nil {
				return false, nil
			}
		case err != nil:
			return false, fmt.Errorf("pr: %w", err)
		case want == nil || !bytes.Equal(got, want):
			return false, nil
		}
	}
	return true, nil
}

// commit writes files on a new local branch c.Branch from the base
// commit and commits them.
func (w *work) commit(c Change, files map[string][]byte, name, email string) (string, error) {
	err := w.wt.Checkout(&git.CheckoutOptions{
		Branch: plumbing.NewBranchReferenceName(c.Branch),
		Hash:   w.base.Hash,
		Create: true,
		Force:  true,
	})
	if err != nil {
		return "", fmt.Errorf("pr: create branch %s: %w", c.Branch, err)
	}
	for p, data := range files {
		if data == nil {
			if _, err := w.wt.Remove(p); err != nil && !errors.Is(err, object.ErrEntryNotFound) && !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("pr: delete %s: %w", p, err)
			}
			continue
		}
		if err := writeFile(w.wt, p, data); err != nil {
			return "", fmt.Errorf("pr: write %s: %w", p, err)
		}
		if _, err := w.wt.Add(p); err != nil {
			return "", fmt.Errorf("pr: add %s: %w", p, err)
		}
	}
	sig := &object.Signature{Name: name, Email: email, When: time.Now()}
	msg := c.Title + "\n\nProposed by Palisade learning for ruleset " + c.Ruleset + ".\n"
	hash, err := w.wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", fmt.Errorf("pr: commit: %w", err)
	}
	return hash.String(), nil
}

func writeFile(wt *git.Worktree, path string, data []byte) error {
	f, err := wt.Filesystem.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pushBranch force-pushes the local c.Branch to the remote c.Branch, and
// nothing else: the base branch is never a destination.
func (p *Publisher) pushBranch(ctx context.Context, w *work, c Change) error {
	ref := plumbing.NewBranchReferenceName(c.Branch)
	if ref == plumbing.NewBranchReferenceName(c.Base) {
		return fmt.Errorf("pr: refusing to push to the base branch %s", c.Base)
	}
	spec := config.RefSpec("+" + ref.String() + ":" + ref.String())
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("pr: branch %q: %w", c.Branch, err)
	}
	err := w.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{spec},
		Auth:       p.auth(),
		CABundle:   p.ca,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("pr: push %s: %w", c.Branch, err)
	}
	return nil
}
