package forge

import (
	"context"
	"sort"

	"github.com/google/go-github/v81/github"
)

// GitHub is a repository's pull requests on GitHub or GitHub Enterprise
// Server (github.com/google/go-github).
type GitHub struct {
	common
	client      *github.Client
	owner, name string
}

var _ Forge = (*GitHub)(nil)

// NewGitHub returns a client of github.com (o.URL empty) or of the GitHub
// Enterprise server at o.URL, for o.Repo ("owner/name"). It makes no
// request.
func NewGitHub(o Options) (*GitHub, error) {
	c, err := newCommon(o, true)
	if err != nil {
		return nil, err
	}
	owner, name, _ := splitRepo(o.Repo)
	client := github.NewClient(c.http).WithAuthToken(c.token)
	if o.URL != "" {
		if client, err = client.WithEnterpriseURLs(o.URL, o.URL); err != nil {
			return nil, c.wrap(err, "github: server URL")
		}
	}
	client.UserAgent = "palisade"
	return &GitHub{common: c, client: client, owner: owner, name: name}, nil
}

// FindPullRequests implements Forge.
func (g *GitHub) FindPullRequests(ctx context.Context, head string) ([]PullRequest, error) {
	opts := &github.PullRequestListOptions{
		State:       "all",
		Head:        g.owner + ":" + head,
		ListOptions: github.ListOptions{PerPage: perPage},
	}
	var out []PullRequest
	for page := 1; page <= maxPages; page++ {
		opts.Page = page
		prs, resp, err := g.client.PullRequests.List(ctx, g.owner, g.name, opts)
		if err != nil {
			return nil, g.wrap(err, "github: list pull requests of %s/%s", g.owner, g.name)
		}
		for _, pr := range prs {
			// The head filter is the API's; checked again so that a fork's
			// branch never counts, whatever the server does.
			if pr.GetHead().GetRef() != head || pr.GetHead().GetRepo().GetFullName() != pr.GetBase().GetRepo().GetFullName() {
				continue
			}
			out = append(out, githubPR(pr))
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// CreatePullRequest implements Forge.
func (g *GitHub) CreatePullRequest(ctx context.Context, base, head, title, body string) (PullRequest, error) {
	pr, _, err := g.client.PullRequests.Create(ctx, g.owner, g.name, &github.NewPullRequest{
		Base: &base, Head: &head, Title: &title, Body: &body,
	})
	if err != nil {
		return PullRequest{}, g.wrap(err, "github: create pull request %s -> %s", head, base)
	}
	return githubPR(pr), nil
}

// UpdatePullRequest implements Forge.
func (g *GitHub) UpdatePullRequest(ctx context.Context, number int, title, body string) (PullRequest, error) {
	pr, resp, err := g.client.PullRequests.Edit(ctx, g.owner, g.name, number, &github.PullRequest{Title: &title, Body: &body})
	if err != nil {
		return PullRequest{}, g.wrap(notFound(githubStatus(resp), err), "github: edit pull request %d", number)
	}
	return githubPR(pr), nil
}

// BranchCommit implements Forge.
func (g *GitHub) BranchCommit(ctx context.Context, branch string) (string, error) {
	b, resp, err := g.client.Repositories.GetBranch(ctx, g.owner, g.name, branch, 0)
	if err != nil {
		return "", g.wrap(notFound(githubStatus(resp), err), "github: branch %s", branch)
	}
	sha := b.GetCommit().GetSHA()
	if sha == "" {
		return "", g.wrap(ErrNotFound, "github: branch %s has no commit", branch)
	}
	return sha, nil
}

func githubStatus(resp *github.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

func githubPR(pr *github.PullRequest) PullRequest {
	return PullRequest{
		Number: pr.GetNumber(),
		URL:    pr.GetHTMLURL(),
		Title:  pr.GetTitle(),
		Body:   pr.GetBody(),
		Base:   pr.GetBase().GetRef(),
		Head:   pr.GetHead().GetRef(),
		Open:   pr.GetState() == "open",
		Merged: pr.GetMerged() || pr.MergedAt != nil,
	}
}
