package forge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/learning/forge"
	giteatest "github.com/palisade-dev/palisade/test/gitea"
)

// The Gitea client against a real Gitea: a branch's pull requests are
// found open, then closed (merged or not), created and edited in place;
// a wrong token's error does not contain it.
func TestGiteaAgainstRealServer(t *testing.T) {
	ctx := context.Background()
	s := giteatest.Start(t)
	r := s.CreateRepo(t, "policy")
	f, err := forge.New(forge.Options{Kind: forge.KindGitea, URL: s.URL, Repo: r.FullName(), TokenFile: s.TokenFile(t)})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.BranchCommit(ctx, "palisade/learn/x"); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing branch: want ErrNotFound, got %v", err)
	}
	commit := s.Push(t, r, "main", "palisade/learn/x", map[string]string{"learned/x.yaml": "a: 1\n"})
	if got, err := f.BranchCommit(ctx, "palisade/learn/x"); err != nil || got != commit {
		t.Fatalf("BranchCommit = %q, %v; want %s", got, err, commit)
	}
	if prs, err := f.FindPullRequests(ctx, "palisade/learn/x"); err != nil || len(prs) != 0 {
		t.Fatalf("before any pull request: %v, %v", prs, err)
	}

	created, err := f.CreatePullRequest(ctx, "main", "palisade/learn/x", "learn x", "body one")
	if err != nil {
		t.Fatal(err)
	}
	if created.Number == 0 || !created.Open || created.Merged || created.Base != "main" || created.Head != "palisade/learn/x" ||
		!strings.HasPrefix(created.URL, s.URL+"/") || created.Body != "body one" {
		t.Fatalf("created: %+v", created)
	}
	updated, err := f.UpdatePullRequest(ctx, created.Number, "learn x again", "body two")
	if err != nil || updated.Number != created.Number || updated.Title != "learn x again" || updated.Body != "body two" {
		t.Fatalf("updated: %+v, %v", updated, err)
	}
	if _, err := f.UpdatePullRequest(ctx, 999, "t", "b"); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("update of a missing pull request: want ErrNotFound, got %v", err)
	}

	// Another branch's pull request is not returned.
	s.Push(t, r, "main", "other", map[string]string{"o.txt": "o\n"})
	if _, err := f.CreatePullRequest(ctx, "main", "other", "other", ""); err != nil {
		t.Fatal(err)
	}

	s.ClosePR(t, r, created.Number)
	s.Push(t, r, "palisade/learn/x", "palisade/learn/x", map[string]string{"learned/x.yaml": "a: 2\n"})
	second, err := f.CreatePullRequest(ctx, "main", "palisade/learn/x", "learn x", "body three")
	if err != nil {
		t.Fatal(err)
	}
	s.MergePR(t, r, second.Number)

	prs, err := f.FindPullRequests(ctx, "palisade/learn/x")
	if err != nil {
		t.Fatal(err)
	}
	if len(prs) != 2 || prs[0].Number != second.Number || prs[1].Number != created.Number {
		t.Fatalf("pull requests of the branch, newest first: %+v", prs)
	}
	if prs[0].Open || !prs[0].Merged || prs[1].Open || prs[1].Merged || prs[1].Body != "body two" {
		t.Fatalf("states: merged %+v; closed %+v", prs[0], prs[1])
	}

	// A wrong token fails with an error that does not contain it.
	tokenFile := filepath.Join(t.TempDir(), "token")
	const bad = "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(tokenFile, []byte(bad+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong, err := forge.NewGitea(forge.Options{URL: s.URL, Repo: r.FullName(), TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.CreatePullRequest(ctx, "main", "palisade/learn/x", "t", "b")
	if err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("wrong token: want an error without the token, got %v", err)
	}
}
