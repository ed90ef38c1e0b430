package pr_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/learning/forge"
	"github.com/palisade-dev/palisade/learning/pr"
	giteatest "github.com/palisade-dev/palisade/test/gitea"
)

const rulesetFile = "policy/runtime.yaml"

// proposal is a change that writes learned/shop.yaml with learned and
// sets the ruleset's mode to audit, reading the ruleset from the base.
func proposal(t *testing.T, learned, body string) pr.Change {
	return pr.Change{
		Ruleset: "shop",
		Base:    "main",
		Title:   "Learned rules for shop",
		Body:    body,
		Files: func(read func(string) ([]byte, error)) (map[string][]byte, error) {
			if _, err := read("learned/shop.yaml"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("reading a file missing from the base: want fs.ErrNotExist, got %v", err)
			}
			src, err := read(rulesetFile)
			if err != nil {
				return nil, err
			}
			edited := strings.Replace(string(src), "mode: learning", "mode: audit", 1)
			return map[string][]byte{"learned/shop.yaml": []byte(learned), rulesetFile: []byte(edited)}, nil
		},
	}
}

// The whole idempotent flow against a real Gitea: create, update in place,
// unchanged, declined after a close, a new pull request for new content,
// merge, up to date; the base branch moves only by the merge.
func TestPublishAgainstGitea(t *testing.T) {
	ctx := context.Background()
	s := giteatest.Start(t)
	r := s.CreateRepo(t, "policy")
	baseCommit := s.Push(t, r, "main", "main", map[string]string{rulesetFile: "kind: RuntimeRuleset\nmode: learning\n"})
	f, err := forge.NewGitea(forge.Options{URL: s.URL, Repo: r.FullName(), TokenFile: s.TokenFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pr.New(pr.Options{URL: r.CloneURL, Username: s.Username, PasswordFile: s.TokenFile(t), Forge: f, AuthorEmail: "learn@example.invalid"})
	if err != nil {
		t.Fatal(err)
	}
	branch := pr.BranchName("shop")

	publish := func(c pr.Change, want pr.Action) *pr.Result {
		t.Helper()
		res, err := p.Publish(ctx, c)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if res.Action != want {
			t.Fatalf("publish: action %s, want %s (%+v)", res.Action, want, res)
		}
		if main, err := s.BranchCommit(r, "main"); err != nil || main != baseCommit {
			t.Fatalf("main moved to %s (%v): Publish pushed to the base branch", main, err)
		}
		return res
	}
	openPRs := func() (open, all int) {
		for _, x := range s.PullRequests(t, r) {
			all++
			if x.State == "open" {
				open++
			}
		}
		return open, all
	}
	branchFile := func(path string) string {
		t.Helper()
		raw, err := s.ReadFile(r, branch, path)
		if err != nil {
			t.Fatalf("%s on %s: %v", path, branch, err)
		}
		return string(raw)
	}

	first := publish(proposal(t, "v1\n", "body"), pr.Created)
	if first.Number == 0 || !strings.HasPrefix(first.URL, s.URL) || first.Commit == "" {
		t.Fatalf("created: %+v", first)
	}
	if got := branchFile("learned/shop.yaml"); got != "v1\n" {
		t.Fatalf("learned file on the branch: %q", got)
	}
	if got := branchFile(rulesetFile); got != "kind: RuntimeRuleset\nmode: audit\n" {
		t.Fatalf("ruleset file on the branch: %q", got)
	}
	var head string
	for _, x := range s.PullRequests(t, r) {
		if !strings.Contains(x.Body, pr.Marker("shop", first.ContentKey)) {
			t.Fatalf("body without its marker: %q", x.Body)
		}
		head = x.Head.Sha
	}
	if head != first.Commit {
		t.Fatalf("pull request head %s, pushed %s", head, first.Commit)
	}

	second := publish(proposal(t, "v2\n", "body"), pr.Updated)
	if second.Number != first.Number || second.Commit == "" || second.Commit == first.Commit {
		t.Fatalf("update in place: %+v after %+v", second, first)
	}
	if got := branchFile("learned/shop.yaml"); got != "v2\n" {
		t.Fatalf("learned file after the update: %q", got)
	}
	if open, all := openPRs(); open != 1 || all != 1 {
		t.Fatalf("after an update: %d open of %d pull requests, want 1 of 1", open, all)
	}

	same := publish(proposal(t, "v2\n", "body"), pr.Unchanged)
	if same.Number != first.Number || same.Commit != "" {
		t.Fatalf("unchanged: %+v", same)
	}
	if head, _ := s.BranchCommit(r, branch); head != second.Commit {
		t.Fatalf("an unchanged publish pushed: branch at %s, was %s", head, second.Commit)
	}
	text := publish(proposal(t, "v2\n", "new evidence table"), pr.Updated)
	if text.Commit != "" {
		t.Fatalf("a new body alone pushed %s", text.Commit)
	}

	s.ClosePR(t, r, first.Number)
	declined := publish(proposal(t, "v2\n", "new evidence table"), pr.Declined)
	if declined.Number != first.Number {
		t.Fatalf("declined: %+v", declined)
	}
	if open, all := openPRs(); open != 0 || all != 1 {
		t.Fatalf("after a declined publish: %d open of %d, want 0 of 1", open, all)
	}

	third := publish(proposal(t, "v3\n", "body"), pr.Created)
	if third.Number == first.Number {
		t.Fatalf("new content after a decline reused pull request %d", first.Number)
	}
	if open, all := openPRs(); open != 1 || all != 2 {
		t.Fatalf("after new content: %d open of %d, want 1 of 2", open, all)
	}

	// The declined content again while another proposal is open: still
	// declined, and the open one is left as it is.
	again := publish(proposal(t, "v2\n", "new evidence table"), pr.Declined)
	if again.Number != first.Number {
		t.Fatalf("declined while another is open: %+v", again)
	}
	if got := branchFile("learned/shop.yaml"); got != "v3\n" {
		t.Fatalf("the open proposal's branch changed to %q", got)
	}

	s.MergePR(t, r, third.Number)
	for path, want := range map[string]string{"learned/shop.yaml": "v3\n", rulesetFile: "kind: RuntimeRuleset\nmode: audit\n"} {
		got, err := s.ReadFile(r, "main", path)
		if err != nil || string(got) != want {
			t.Fatalf("%s on main after the merge: %q, %v", path, got, err)
		}
	}
	baseCommit, _ = s.BranchCommit(r, "main")
	publish(proposal(t, "v3\n", "body"), pr.UpToDate)

	// The base branch is never the pushed branch.
	c := proposal(t, "v4\n", "body")
	c.Branch = "main"
	if _, err := p.Publish(ctx, c); err == nil {
		t.Fatal("a change whose branch is the base was published")
	}

	// Paths outside the repository, or in .git, are refused.
	for _, bad := range []string{"../x", "/etc/passwd", ".git/config", "a/./b", ""} {
		c := proposal(t, "v4\n", "body")
		c.Files = func(func(string) ([]byte, error)) (map[string][]byte, error) {
			return map[string][]byte{bad: []byte("x")}, nil
		}
		if _, err := p.Publish(ctx, c); err == nil || !strings.Contains(err.Error(), "invalid file path") {
			t.Fatalf("path %q: want an invalid path error, got %v", bad, err)
		}
	}

	// A wrong token: the push fails, and the error does not contain it.
	const bad = "0123456789abcdef0123456789abcdef01234567"
	badFile := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(badFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong, err := pr.New(pr.Options{URL: r.CloneURL, Username: s.Username, PasswordFile: badFile, Forge: f})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Publish(ctx, proposal(t, "v5\n", "body"))
	if err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("wrong token: want an error without it, got %v", err)
	}
}
