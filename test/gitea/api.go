package gitea

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// API calls Gitea's API as the admin: method on /api/v1+path with body
// (JSON-encoded when not nil), decoding the answer into out (when not
// nil). An answer other than 2xx is an error; IsNotFound tells a 404.
func (s *Server) API(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+"/api/v1"+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+s.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &errStatus{method: method, path: path, code: resp.StatusCode, body: string(raw)}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Repo is a repository the admin owns.
type Repo struct {
	Owner, Name string
	// CloneURL is its HTTP clone address (no credentials).
	CloneURL string
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// CreateRepo creates a repository of the admin's with one commit (a
// README) on branch main, and waits until Gitea serves that branch.
func (s *Server) CreateRepo(t testing.TB, name string) Repo {
	t.Helper()
	var out struct {
		CloneURL string `json:"clone_url"`
		Owner    struct {
			Login string `json:"login"`
		} `json:"owner"`
		Name string `json:"name"`
	}
	err := s.API("POST", "/user/repos", map[string]any{
		"name":           name,
		"auto_init":      true,
		"default_branch": "main",
		"readme":         "Default",
		"private":        false,
	}, &out)
	if err != nil {
		t.Fatalf("create repository %s: %v", name, err)
	}
	r := Repo{Owner: out.Owner.Login, Name: out.Name, CloneURL: out.CloneURL}
	s.WaitBranch(t, r, "main", "")
	return r
}

// BranchCommit returns the commit of branch, or an error for which
// IsNotFound is true when Gitea has no such branch (yet).
func (s *Server) BranchCommit(r Repo, branch string) (string, error) {
	var out struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	if err := s.API("GET", "/repos/"+r.FullName()+"/branches/"+url.PathEscape(branch), nil, &out); err != nil {
		return "", err
	}
	return out.Commit.ID, nil
}

// WaitBranch polls the branch endpoint until it answers 200 (and, when
// commit is not empty, names that commit): Gitea registers a push
// asynchronously, and opening a pull request before fails. It fails the
// test after 30 s.
func (s *Server) WaitBranch(t testing.TB, r Repo, branch, commit string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := s.BranchCommit(r, branch)
		if err == nil && (commit == "" || got == commit) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("branch %s of %s: want commit %q, have %q (%v)", branch, r.FullName(), commit, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PullRequest is what tests check of a pull request.
type PullRequest struct {
	Number int    `json:"number"`
	State  string `json:"state"` // open or closed
	Merged bool   `json:"merged"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	URL    string `json:"html_url"`
	Head   struct {
		Ref string `json:"ref"`
		Sha string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// PullRequests returns every pull request of the repository, open and
// closed.
func (s *Server) PullRequests(t testing.TB, r Repo) []PullRequest {
	t.Helper()
	var all []PullRequest
	for page := 1; ; page++ {
		var prs []PullRequest
		if err := s.API("GET", fmt.Sprintf("/repos/%s/pulls?state=all&limit=50&page=%d", r.FullName(), page), nil, &prs); err != nil {
			t.Fatalf("list pull requests: %v", err)
		}
		all = append(all, prs...)
		if len(prs) < 50 {
			return all
		}
	}
}

// MergePR merges pull request number with a merge commit, retrying for a
// while as Gitea checks mergeability asynchronously after a push.
func (s *Server) MergePR(t testing.TB, r Repo, number int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.API("POST", fmt.Sprintf("/repos/%s/pulls/%d/merge", r.FullName(), number),
			map[string]any{"Do": "merge", "delete_branch_after_merge": false}, nil)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("merge pull request %d of %s: %v", number, r.FullName(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ClosePR closes pull request number without merging it.
func (s *Server) ClosePR(t testing.TB, r Repo, number int) {
	t.Helper()
	if err := s.API("PATCH", fmt.Sprintf("/repos/%s/pulls/%d", r.FullName(), number), map[string]any{"state": "closed"}, nil); err != nil {
		t.Fatalf("close pull request %d of %s: %v", number, r.FullName(), err)
	}
}

// ReadFile returns the content of path on ref (a branch, tag or commit),
// or an error for which IsNotFound is true when there is none.
func (s *Server) ReadFile(r Repo, ref, path string) ([]byte, error) {
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/repos/%s/raw/%s?ref=%s",
		s.URL, r.FullName(), (&url.URL{Path: path}).EscapedPath(), url.QueryEscape(ref)), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+s.Token)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &errStatus{method: "GET", path: "raw " + path, code: resp.StatusCode, body: string(raw)}
	}
	return raw, nil
}
