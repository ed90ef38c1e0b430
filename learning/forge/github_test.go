package forge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/palisade-dev/palisade/learning/forge"
)

func githubPR(number int, state, headRepo, ref, merged, body string) string {
	return fmt.Sprintf(`{"number":%d,"state":%q,"title":"t%d","body":%q,"html_url":"https://gh.example/acme/policy/pull/%d",
		"merged_at":%s,"head":{"ref":%q,"repo":{"full_name":%q}},"base":{"ref":"main","repo":{"full_name":"acme/policy"}}}`,
		number, state, number, body, number, merged, ref, headRepo)
}

func TestGitHubRequests(t *testing.T) {
	const token = "ghp-secret-token-value"
	const pulls = "/api/v3/repos/acme/policy/pulls"
	var srv *fakeForge
	srv = newFake(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET " + pulls: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") != "2" {
				w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=2>; rel="next"`, srv.URL, pulls))
				fmt.Fprintf(w, "[%s,%s,%s]",
					githubPR(5, "open", "acme/policy", "palisade/learn/x", "null", "open one"),
					githubPR(4, "open", "evil/policy", "palisade/learn/x", "null", "a fork's"),
					githubPR(3, "closed", "acme/policy", "palisade/learn/x", `"2026-12-01T10:00:00Z"`, "merged"))
				return
			}
			fmt.Fprintf(w, "[%s]", githubPR(2, "closed", "acme/policy", "palisade/learn/x", "null", "declined"))
		},
		"POST " + pulls:         reply(githubPR(6, "open", "acme/policy", "palisade/learn/x", "null", "new body")),
		"PATCH " + pulls + "/5": reply(githubPR(5, "open", "acme/policy", "palisade/learn/x", "null", "edited")),
		"GET /api/v3/repos/acme/policy/branches/palisade%2Flearn%2Fx": reply(`{"name":"palisade/learn/x","commit":{"sha":"abc123"}}`),
		"PATCH " + pulls + "/9": echoAuth,
	})
	f, err := forge.New(forge.Options{Kind: forge.KindGitHub, URL: srv.URL, Repo: "acme/policy", TokenFile: writeToken(t, token)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	prs, err := f.FindPullRequests(ctx, "palisade/learn/x")
	if err != nil {
		t.Fatal(err)
	}
	want := []forge.PullRequest{
		{Number: 5, URL: "https://gh.example/acme/policy/pull/5", Title: "t5", Body: "open one", Base: "main", Head: "palisade/learn/x", Open: true},
		{Number: 3, URL: "https://gh.example/acme/policy/pull/3", Title: "t3", Body: "merged", Base: "main", Head: "palisade/learn/x", Merged: true},
		{Number: 2, URL: "https://gh.example/acme/policy/pull/2", Title: "t2", Body: "declined", Base: "main", Head: "palisade/learn/x"},
	}
	if fmt.Sprint(prs) != fmt.Sprint(want) {
		t.Fatalf("FindPullRequests (the fork's left out, both pages, newest first):\n got %+v\nwant %+v", prs, want)
	}
	list := srv.last(t, "GET", pulls)
	if list.Auth != "Bearer "+token {
		t.Errorf("Authorization = %q", list.Auth)
	}
	if q := srv.requests()[0].Query; q != "head=acme%3Apalisade%2Flearn%2Fx&per_page=50&state=all" && q != "head=acme%3Apalisade%2Flearn%2Fx&page=1&per_page=50&state=all" {
		t.Errorf("list query = %q", q)
	}

	created, err := f.CreatePullRequest(ctx, "main", "palisade/learn/x", "Learned rules", "new body")
	if err != nil || created.Number != 6 || !created.Open {
		t.Fatalf("create: %+v, %v", created, err)
	}
	if b := srv.last(t, "POST", pulls).Body; fmt.Sprint(b) != fmt.Sprint(map[string]any{"base": "main", "head": "palisade/learn/x", "title": "Learned rules", "body": "new body"}) {
		t.Errorf("create body = %v", b)
	}

	if _, err := f.UpdatePullRequest(ctx, 5, "New title", "edited"); err != nil {
		t.Fatal(err)
	}
	if b := srv.last(t, "PATCH", pulls+"/5").Body; b["title"] != "New title" || b["body"] != "edited" {
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
