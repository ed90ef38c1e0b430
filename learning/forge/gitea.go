package forge

import (
	"context"
	"sort"

	gitea "code.gitea.io/sdk/gitea"
)

// Gitea is a repository's pull requests on a Gitea server
// (code.gitea.io/sdk/gitea).
type Gitea struct {
	common
	url         string
	owner, name string
}

var _ Forge = (*Gitea)(nil)

// NewGitea returns a client of the Gitea server at o.URL for o.Repo
// ("owner/name"). It makes no request.
func NewGitea(o Options) (*Gitea, error) {
	c, err := newCommon(o, true)
	if err != nil {
		return nil, err
	}
	if o.URL == "" {
		return nil, errFieldRequired("Gitea", "URL")
	}
	owner, name, _ := splitRepo(o.Repo)
	return &Gitea{common: c, url: o.URL, owner: owner, name: name}, nil
}

// client returns an SDK client bound to ctx. The SDK keeps one context
// per client, so a client per call keeps concurrent calls apart; the
// version check it would otherwise make on creation is skipped (the
// calls used here exist in every Gitea since 1.11).
func (g *Gitea) client(ctx context.Context) (*gitea.Client, error) {
	c, err := gitea.NewClient(g.url,
		gitea.SetToken(g.token),
		gitea.SetHTTPClient(g.http),
		gitea.SetContext(ctx),
		gitea.SetGiteaVersion(""),
		gitea.SetUserAgent("palisade"),
	)
	if err != nil {
		return nil, g.wrap(err, "gitea: new client")
	}
	return c, nil
}

// FindPullRequests implements Forge.
func (g *Gitea) FindPullRequests(ctx context.Context, head string) ([]PullRequest, error) {
	c, err := g.client(ctx)
	if err != nil {
		return nil, err
	}
	var out []PullRequest
	for page := 1; page <= maxPages; page++ {
		prs, resp, err := c.ListRepoPullRequests(g.owner, g.name, gitea.ListPullRequestsOptions{
			ListOptions: gitea.ListOptions{Page: page, PageSize: perPage},
			State:       gitea.StateAll,
			// Gitea cannot filter by head: most recently updated first,
			// so that the maxPages bound only ever drops old ones.
			Sort: "recentupdate",
		})
		if err != nil {
			return nil, g.wrap(err, "gitea: list pull requests of %s/%s", g.owner, g.name)
		}
		for _, pr := range prs {
			if pr.Head == nil || pr.Base == nil || pr.Head.Ref != head || pr.Head.RepoID != pr.Base.RepoID {
				continue
			}
			out = append(out, giteaPR(pr))
		}
		if len(prs) < perPage || resp == nil || resp.NextPage == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// CreatePullRequest implements Forge.
func (g *Gitea) CreatePullRequest(ctx context.Context, base, head, title, body string) (PullRequest, error) {
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, err
	}
	pr, _, err := c.CreatePullRequest(g.owner, g.name, gitea.CreatePullRequestOption{
		Base: base, Head: head, Title: title, Body: body,
	})
	if err != nil {
		return PullRequest{}, g.wrap(err, "gitea: create pull request %s -> %s", head, base)
	}
	return giteaPR(pr), nil
}

// UpdatePullRequest implements Forge.
func (g *Gitea) UpdatePullRequest(ctx context.Context, number int, title, body string) (PullRequest, error) {
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, err
	}
	pr, resp, err := c.EditPullRequest(g.owner, g.name, int64(number), gitea.EditPullRequestOption{Title: title, Body: &body})
	if err != nil {
		return PullRequest{}, g.wrap(notFound(status(resp), err), "gitea: edit pull request %d", number)
	}
	return giteaPR(pr), nil
}

// BranchCommit implements Forge.
func (g *Gitea) BranchCommit(ctx context.Context, branch string) (string, error) {
	c, err := g.client(ctx)
	if err != nil {
		return "", err
	}
	b, resp, err := c.GetRepoBranch(g.owner, g.name, branch)
	if err != nil {
		return "", g.wrap(notFound(status(resp), err), "gitea: branch %s", branch)
	}
	if b.Commit == nil {
		return "", g.wrap(ErrNotFound, "gitea: branch %s has no commit", branch)
	}
	return b.Commit.ID, nil
}

func status(resp *gitea.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

func giteaPR(pr *gitea.PullRequest) PullRequest {
	p := PullRequest{
		Number: int(pr.Index),
		URL:    pr.HTMLURL,
		Title:  pr.Title,
		Body:   pr.Body,
		Open:   pr.State == gitea.StateOpen,
		Merged: pr.HasMerged,
	}
	if pr.Base != nil {
		p.Base = pr.Base.Ref
	}
	if pr.Head != nil {
		p.Head = pr.Head.Ref
	}
	return p
}
