package forge

import (
	"context"
	"sort"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// GitLab is a project's merge requests on GitLab
// (gitlab.com/gitlab-org/api/client-go).
type GitLab struct {
	common
	client  *gitlab.Client
	project string
}

var _ Forge = (*GitLab)(nil)

// NewGitLab returns a client of gitlab.com (o.URL empty) or of the GitLab
// server at o.URL, for the project whose full path is o.Repo. It makes no
// request.
func NewGitLab(o Options) (*GitLab, error) {
	c, err := newCommon(o, false)
	if err != nil {
		return nil, err
	}
	// The library retries failed requests on its own (retryablehttp);
	// a proposal is retried by its caller instead, so every call here
	// is bounded by one timeout.
	opts := []gitlab.ClientOptionFunc{gitlab.WithHTTPClient(c.http), gitlab.WithoutRetries()}
	if o.URL != "" {
		opts = append(opts, gitlab.WithBaseURL(o.URL))
	}
	client, err := gitlab.NewClient(c.token, opts...)
	if err != nil {
		return nil, c.wrap(err, "gitlab: new client")
	}
	client.UserAgent = "palisade"
	return &GitLab{common: c, client: client, project: o.Repo}, nil
}

// FindPullRequests implements Forge: the project's merge requests from
// source branch head, in any state.
func (g *GitLab) FindPullRequests(ctx context.Context, head string) ([]PullRequest, error) {
	state := "all"
	opts := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions:  gitlab.ListOptions{PerPage: perPage},
		State:        &state,
		SourceBranch: &head,
	}
	var out []PullRequest
	for page := int64(1); page <= maxPages; page++ {
		opts.Page = page
		mrs, resp, err := g.client.MergeRequests.ListProjectMergeRequests(g.project, opts, gitlab.WithContext(ctx))
		if err != nil {
			return nil, g.wrap(err, "gitlab: list merge requests of %s", g.project)
		}
		for _, mr := range mrs {
			if mr.SourceBranch != head || mr.SourceProjectID != mr.TargetProjectID {
				continue
			}
			out = append(out, gitlabMR(mr))
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// CreatePullRequest implements Forge.
func (g *GitLab) CreatePullRequest(ctx context.Context, base, head, title, body string) (PullRequest, error) {
	mr, _, err := g.client.MergeRequests.CreateMergeRequest(g.project, &gitlab.CreateMergeRequestOptions{
		Title: &title, Description: &body, SourceBranch: &head, TargetBranch: &base,
	}, gitlab.WithContext(ctx))
	if err != nil {
		return PullRequest{}, g.wrap(err, "gitlab: create merge request %s -> %s", head, base)
	}
	return gitlabMR(&mr.BasicMergeRequest), nil
}

// UpdatePullRequest implements Forge.
func (g *GitLab) UpdatePullRequest(ctx context.Context, number int, title, body string) (PullRequest, error) {
	mr, resp, err := g.client.MergeRequests.UpdateMergeRequest(g.project, int64(number), &gitlab.UpdateMergeRequestOptions{
		Title: &title, Description: &body,
	}, gitlab.WithContext(ctx))
	if err != nil {
		return PullRequest{}, g.wrap(notFound(gitlabStatus(resp), err), "gitlab: edit merge request !%d", number)
	}
	return gitlabMR(&mr.BasicMergeRequest), nil
}

// BranchCommit implements Forge.
func (g *GitLab) BranchCommit(ctx context.Context, branch string) (string, error) {
	b, resp, err := g.client.Branches.GetBranch(g.project, branch, gitlab.WithContext(ctx))
	if err != nil {
		return "", g.wrap(notFound(gitlabStatus(resp), err), "gitlab: branch %s", branch)
	}
	if b.Commit == nil || b.Commit.ID == "" {
		return "", g.wrap(ErrNotFound, "gitlab: branch %s has no commit", branch)
	}
	return b.Commit.ID, nil
}

func gitlabStatus(resp *gitlab.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

func gitlabMR(mr *gitlab.BasicMergeRequest) PullRequest {
	return PullRequest{
		Number: int(mr.IID),
		URL:    mr.WebURL,
		Title:  mr.Title,
		Body:   mr.Description,
		Base:   mr.TargetBranch,
		Head:   mr.SourceBranch,
		Open:   mr.State == "opened" || mr.State == "locked",
		Merged: mr.State == "merged",
	}
}
