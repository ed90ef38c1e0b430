package gitea_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/test/gitea"
)

// The harness end to end: a repository with a first commit on main, a
// push, a pull request opened, merged and closed through the API, and
// the merged file read back from main.
func TestServerPullRequestLifecycle(t *testing.T) {
	s := gitea.Start(t)
	if s.Token == "" || s.Username == "admin" {
		t.Fatalf("admin credentials: user %q, token set %v", s.Username, s.Token != "")
	}
	r := s.CreateRepo(t, "harness")
	readme, err := s.ReadFile(r, "main", "README.md")
	if err != nil || !strings.Contains(string(readme), "harness") {
		t.Fatalf("README.md on main: %q, %v", readme, err)
	}
	if _, err := s.ReadFile(r, "main", "missing.txt"); !gitea.IsNotFound(err) {
		t.Fatalf("missing file: want a 404, got %v", err)
	}

	open := func(branch string) int {
		t.Helper()
		s.Push(t, r, "main", branch, map[string]string{branch + ".txt": "from " + branch + "\n"})
		var pr gitea.PullRequest
		err := s.API("POST", "/repos/"+r.FullName()+"/pulls", map[string]any{
			"base": "main", "head": branch, "title": "add " + branch,
		}, &pr)
		if err != nil {
			t.Fatalf("open pull request from %s: %v", branch, err)
		}
		return pr.Number
	}
	merged, closed := open("feature"), open("other")
	s.MergePR(t, r, merged)
	s.ClosePR(t, r, closed)

	got, err := s.ReadFile(r, "main", "feature.txt")
	if err != nil || string(got) != "from feature\n" {
		t.Fatalf("feature.txt on main after the merge: %q, %v", got, err)
	}
	if _, err := s.ReadFile(r, "main", "other.txt"); !gitea.IsNotFound(err) {
		t.Fatalf("other.txt on main after closing its pull request: %v", err)
	}
	states := map[int]string{}
	for _, pr := range s.PullRequests(t, r) {
		states[pr.Number] = fmt.Sprintf("%s merged=%v", pr.State, pr.Merged)
	}
	if states[merged] != "closed merged=true" || states[closed] != "closed merged=false" || len(states) != 2 {
		t.Fatalf("pull requests: %v", states)
	}
}
