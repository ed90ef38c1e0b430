package forge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/palisade-dev/palisade/learning/forge"
)

func gitlabMR(iid int, state string, sourceProject int, branch, body string) string {
	return fmt.Sprintf(`{"iid":%d,"state":%q,"title":"t%d","description":%q,"web_url":"https://gl.example/group/sub/policy/-/merge_requests/%d",
		"source_branch":%q,"target_branch":"main","source_project_id":%d,"target_project_id":7}`,
		iid, state, iid, body, iid, branch, sourceProject)
}

func TestGitLabRequests(t *testing.T) {
	const token = "glpat-secret-token-value"
	const mrs = "/api/v4/projects/group%2Fsub%2Fpolicy/merge_requests"
	srv := newFake(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET " + mrs: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") != "2" {
				w.Header().Set("X-Next-Page", "2")
				fmt.Fprintf(w, "[%s,%s,%s]",
					gitlabMR(5, "opened", 7, "palisade/learn/x", "open one"),
					gitlabMR(4, "opened", 99, "palisade/learn/x", "a fork's"),
					gitlabMR(3, "merged", 7, "palisade/learn/x", "merged"))
				return
			}
			fmt.Fprintf(w, "[%s]", gitlabMR(2, "closed", 7, "palisade/learn/x", "declined"))
		},
		"POST " + mrs:       reply(gitlabMR(6, "opened", 7, "palisade/learn/x", "new body")),
		"PUT " + mrs + "/5": reply(gitlabMR(5, "opened", 7, "palisade/learn/x", "edited")),
		"GET /api/v4/projects/group%2Fsub%2Fpolicy/repository/branches/palisade%2Flearn%2Fx": reply(`{"name":"palisade/learn/x","commit":{"id":"abc123"}}`),
		"PUT " + mrs + "/9": echoAuth,
	})
	f, err := forge.New(forge.Options{Kind: forge.KindGitLab, URL: srv.URL, Repo: "group/sub/policy", TokenFile: writeToken(t, token)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	prs, err := f.FindPullRequests(ctx, "palisade/learn/x")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://gl.example/group/sub/policy/-/merge_requests/"
	want := []forge.PullRequest{
		{Number: 5, URL: url + "5", Title: "t5", Body: "open one", Base: "main", Head: "palisade/learn/x", Open: true},
		{Number: 3, URL: url + "3", Title: "t3", Body: "merged", Base: "main", Head: "palisade/learn/x", Merged: true},
		{Number: 2, URL: url + "2", Title: "t2", Body: "declined", Base: "main", Head: "palisade/learn/x"},
	}
	if fmt.Sprint(prs) != fmt.Sprint(want) {
		t.Fatalf("FindPullRequests (the fork's left out, both pages, newest first):\n got %+v\nwant %+v", prs, want)
	}
	list := srv.requests()[0]
	if list.Auth != "PRIVATE-TOKEN "+token {
		t.Errorf("auth = %q", list.Auth)
	}
	if list.Query != "page=1&per_page=50&source_branch=palisade%2Flearn%2Fx&state=all" {
		t.Errorf("list query = %q", list.Query)
	}

	created, err := f.CreatePullRequest(ctx, "main", "palisade/learn/x", "Learned rules", "new body")
	if err != nil || created.Number != 6 || !created.Open {
		t.Fatalf("create: %+v, %v", created, err)
	}
	want2 := map[string]any{"source_branch": "palisade/learn/x", "target_branch": "main", "title": "Learned rules", "description": "new body"}
	if b := srv.last(t, "POST", mrs).Body; fmt.Sprint(b) != fmt.Sprint(want2) {
		t.Errorf("create body = %v", b)
	}

	if _, err := f.UpdatePullRequest(ctx, 5, "New title", "edited"); err != nil {
		t.Fatal(err)
	}
	if b := srv.last(t, "PUT", mrs+"/5").Body; b["title"] != "New title" || b["description"] != "edited" {
		t.Errorf("edit body = %v", b)
	}

	if sha, err := f.BranchCommit(ctx, "palisade/learn/x"); err != nil || sha != "abc123" {
		t.Fatalf("BranchCommit = %q, %v", sha, err)
	}
	if _, err := f.BranchCommit(ctx, "missing"); !errors.Is(err, forge.ErrNotFound) {
		t.Fatalf("missing branch: want ErrNotFound, got %v", err)
	}
	_, err = f.UpdatePullRequest(ctx, 9, "t", "b")
	mustNotContain(t, err, token)
}

func TestOptionsValidated(t *testing.T) {
	tok := writeToken(t, "x")
	for name, o := range map[string]forge.Options{
		"unknown kind":        {Kind: "bitbucket", Repo: "a/b", TokenFile: tok},
		"no repository":       {Kind: forge.KindGitHub, TokenFile: tok},
		"repository not o/n":  {Kind: forge.KindGitea, URL: "http://x", Repo: "a/b/c", TokenFile: tok},
		"no token file":       {Kind: forge.KindGitLab, Repo: "a/b"},
		"missing token file":  {Kind: forge.KindGitLab, Repo: "a/b", TokenFile: tok + ".missing"},
		"gitea without a URL": {Kind: forge.KindGitea, Repo: "a/b", TokenFile: tok},
		"empty token":         {Kind: forge.KindGitHub, Repo: "a/b", TokenFile: writeToken(t, " ")},
	} {
		if _, err := forge.New(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
