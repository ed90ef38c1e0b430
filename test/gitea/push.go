package gitea

import (
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Push commits files (path to content) on top of branch from of r and
// pushes the commit to branch to (created or fast-forwarded), as the
// admin with go-git over HTTP; it returns the commit once Gitea serves
// the branch at it.
func (s *Server) Push(t testing.TB, r Repo, from, to string, files map[string]string) string {
	t.Helper()
	auth := &githttp.BasicAuth{Username: s.Username, Password: s.Token}
	repo, err := git.Clone(memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL: r.CloneURL, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(from), SingleBranch: true,
	})
	if err != nil {
		t.Fatalf("clone %s: %v", r.FullName(), err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		f, err := wt.Filesystem.Create(p)
		if err == nil {
			_, err = f.Write([]byte(content))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			_, err = wt.Add(p)
		}
		if err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	sig := &object.Signature{Name: "test", Email: "test@example.invalid", When: time.Now()}
	hash, err := wt.Commit("test commit", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	spec := config.RefSpec(plumbing.NewBranchReferenceName(from).String() + ":" + plumbing.NewBranchReferenceName(to).String())
	if err := repo.Push(&git.PushOptions{RefSpecs: []config.RefSpec{spec}, Auth: auth}); err != nil {
		t.Fatalf("push %s to %s: %v", hash, to, err)
	}
	s.WaitBranch(t, r, to, hash.String())
	return hash.String()
}
