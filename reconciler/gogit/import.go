package gogit

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ImportDir turns a plain directory of policy into a Git repository at
// repoDir with one commit of everything in it (dot-directories left out),
// and returns its file:// URL. `palisade up` uses it so that a directory
// that is not a Git repository goes through the same Git code path as
// production. Symbolic links are not followed.
func ImportDir(dir, repoDir string) (string, error) {
	repo, err := git.PlainInitWithOptions(repoDir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", dir, err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel != "." && d.Name()[0] == '.' {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(repoDir, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(repoDir, rel), data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("import %s: %w", dir, err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", fmt.Errorf("import %s: add: %w", dir, err)
	}
	sig := &object.Signature{Name: "palisade up", Email: "up@palisade.dev", When: time.Now()}
	if _, err := wt.Commit("import "+dir, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true}); err != nil {
		return "", fmt.Errorf("import %s: commit: %w", dir, err)
	}
	abs, err := filepath.Abs(repoDir)
	if err != nil {
		return "", err
	}
	return "file://" + abs, nil
}

// IsRepository reports whether dir is the work tree of a Git repository.
func IsRepository(dir string) bool {
	_, err := git.PlainOpen(dir)
	return err == nil
}

// HeadBranch returns the branch checked out in the repository at dir.
func HeadBranch(dir string) (string, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dir, err)
	}
	head, err := repo.Head()
	if err != nil {
		return "", fmt.Errorf("read HEAD of %s: %w", dir, err)
	}
	if !head.Name().IsBranch() {
		return "", fmt.Errorf("HEAD of %s is detached: check out a branch", dir)
	}
	return head.Name().Short(), nil
}
