package forge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/palisade-dev/palisade/internal/certpool"
)

// Forge is a repository's pull requests on a Git forge.
type Forge interface {
	// FindPullRequests returns the pull requests (merge requests on
	// GitLab) whose head is branch of the repository itself, open and
	// closed, newest first.
	FindPullRequests(ctx context.Context, head string) ([]PullRequest, error)
	// CreatePullRequest opens a pull request of head into base.
	CreatePullRequest(ctx context.Context, base, head, title, body string) (PullRequest, error)
	// UpdatePullRequest replaces the title and body of pull request number.
	UpdatePullRequest(ctx context.Context, number int, title, body string) (PullRequest, error)
	// BranchCommit returns the commit SHA the forge has for branch, or an
	// error wrapping ErrNotFound when it has no such branch (yet: Gitea
	// registers a pushed branch asynchronously).
	BranchCommit(ctx context.Context, branch string) (string, error)
}

// ErrNotFound is wrapped by the errors of a branch or pull request the
// forge does not have.
var ErrNotFound = errors.New("not found")

// PullRequest is what the forges agree on about a pull request.
type PullRequest struct {
	Number int
	// URL is the web page of the pull request.
	URL   string
	Title string
	Body  string
	// Base and Head are branch names.
	Base, Head string
	// Open is false once the pull request is closed or merged.
	Open bool
	// Merged is true when it was merged (and so is closed).
	Merged bool
}

// Kinds of forge for Options.Kind.
const (
	KindGitea  = "gitea"
	KindGitHub = "github"
	KindGitLab = "gitlab"
)

// Options configure a forge client.
type Options struct {
	// Kind is KindGitea, KindGitHub or KindGitLab.
	Kind string
	// URL is the forge's address: Gitea's root URL; for GitHub empty
	// (github.com) or a GitHub Enterprise server (its /api/v3/ is added);
	// for GitLab empty (gitlab.com) or the server (its /api/v4 is added).
	URL string
	// Repo is "owner/name" on Gitea and GitHub, the project's full path
	// ("group/subgroup/project") on GitLab.
	Repo string
	// TokenFile holds the API token (surrounding white space ignored).
	TokenFile string
	// CAFile, if set, holds PEM certificates trusted for an HTTPS server
	// (in addition to the system's).
	CAFile string
	// Timeout bounds each request; 30 s when zero.
	Timeout time.Duration
}

// New returns the forge client Options.Kind names.
func New(o Options) (Forge, error) {
	switch o.Kind {
	case KindGitea:
		return NewGitea(o)
	case KindGitHub:
		return NewGitHub(o)
	case KindGitLab:
		return NewGitLab(o)
	}
	return nil, fmt.Errorf("forge: unknown kind %q (want %s, %s or %s)", o.Kind, KindGitea, KindGitHub, KindGitLab)
}

// defaultTimeout bounds a forge request: API calls answer in well under a
// second; a stuck server must not stall a proposal forever.
const defaultTimeout = 30 * time.Second

// common is what every implementation reads from Options.
type common struct {
	token string
	http  *http.Client
}

func newCommon(o Options, needOwnerName bool) (common, error) {
	var c common
	if o.Repo == "" {
		return c, errors.New("forge: a repository is required")
	}
	if needOwnerName {
		if _, _, err := splitRepo(o.Repo); err != nil {
			return c, err
		}
	}
	if o.TokenFile == "" {
		return c, errors.New("forge: a token file is required")
	}
	raw, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return c, fmt.Errorf("forge: read token file: %w", err)
	}
	c.token = strings.TrimSpace(string(raw))
	if c.token == "" {
		return c, fmt.Errorf("forge: token file %s is empty", o.TokenFile)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if o.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if err := certpool.Append(pool, o.CAFile); err != nil {
			return c, fmt.Errorf("forge: CA file: %w", err)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Timeout: timeout, Transport: transport}
	return c, nil
}

func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("forge: repository %q is not owner/name", repo)
	}
	return owner, name, nil
}

// wrap describes a failed call, with the token (should a client library
// ever echo it) redacted.
func (c common) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: fmt.Sprintf(format, args...), err: err, token: c.token}
}

type redactedError struct {
	msg   string
	err   error
	token string
}

func (e *redactedError) Error() string {
	s := e.msg + ": " + e.err.Error()
	if e.token != "" {
		s = strings.ReplaceAll(s, e.token, "[redacted]")
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// notFound wraps ErrNotFound into err when the forge answered 404.
func notFound(status int, err error) error {
	if status == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// maxPages bounds the listing of pull requests: on GitHub and GitLab, a
// branch with more than maxPages*perPage pull requests is not one Palisade
// made; on Gitea, which lists the whole repository's, only the 1,000 most
// recently updated are looked at.
const (
	maxPages = 20
	perPage  = 50
)

func errFieldRequired(forge, field string) error {
	return fmt.Errorf("forge: %s needs %s", forge, field)
}
