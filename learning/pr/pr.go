package pr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/palisade-dev/palisade/learning/forge"
)

// Action is what Publish did.
type Action string

// Actions of a Result.
const (
	// Created: a new pull request was opened.
	Created Action = "created"
	// Updated: the open pull request got new content (branch
	// force-pushed) or a new title or body.
	Updated Action = "updated"
	// Unchanged: the open pull request already proposes exactly this.
	Unchanged Action = "unchanged"
	// Declined: a pull request with this content was closed unmerged;
	// it is not proposed again.
	Declined Action = "declined"
	// UpToDate: the base branch already holds these contents; there is
	// nothing to propose.
	UpToDate Action = "up-to-date"
)

// Result is the outcome of Publish. Number and URL name the pull request
// concerned (the declined one for Declined), zero for UpToDate.
type Result struct {
	Action Action
	Number int
	URL    string
	// Commit is the commit pushed to the branch (Created, or Updated with
	// new content), empty otherwise.
	Commit string
	// ContentKey identifies the files proposed (see ContentKey).
	ContentKey string
}

// Change is one proposal.
type Change struct {
	// Ruleset is what the change is about; it names the branch and is
	// recorded in the pull request's marker.
	Ruleset string
	// Base is the branch the pull request merges into.
	Base string
	// Branch is the pushed branch; BranchName(Ruleset) when empty.
	Branch string
	// Title and Body of the pull request; the marker is appended to Body.
	Title, Body string
	// Files returns the full new content of every file the change writes
	// (nil to delete one), given a reader of the base branch's files
	// (whose error wraps fs.ErrNotExist for a missing file).
	Files func(read func(path string) ([]byte, error)) (map[string][]byte, error)
}

// BranchPrefix starts every branch Palisade's learning pushes.
const BranchPrefix = "palisade/learn/"

// BranchName is the default branch of a ruleset's proposals.
func BranchName(ruleset string) string { return BranchPrefix + ruleset }

// ContentKey is the hex SHA-256 of a change's files: every path in order
// with its content (or its deletion).
func ContentKey(files map[string][]byte) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		if files[p] == nil {
			fmt.Fprintf(h, "delete %q\n", p)
			continue
		}
		fmt.Fprintf(h, "file %q %d\n", p, len(files[p]))
		h.Write(files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Marker is the HTML comment ending a proposal's body.
func Marker(ruleset, contentKey string) string {
	return "<!-- palisade-learn ruleset=" + strconv.Quote(ruleset) + " content=" + contentKey + " -->"
}

var markerRE = regexp.MustCompile(`<!-- palisade-learn ruleset=("(?:[^"\\]|\\.)*") content=([0-9a-f]{64}) -->`)

// ParseMarker returns the ruleset and content key of the last marker in
// body; ok is false when there is none.
func ParseMarker(body string) (ruleset, contentKey string, ok bool) {
	all := markerRE.FindAllStringSubmatch(body, -1)
	if len(all) == 0 {
		return "", "", false
	}
	m := all[len(all)-1]
	ruleset, err := strconv.Unquote(m[1])
	if err != nil {
		return "", "", false
	}
	return ruleset, m[2], true
}

// Options configure a Publisher. Secrets are read from files.
type Options struct {
	// URL is the policy repository's clone address: https://, http://
	// (tests) or file://.
	URL string
	// Username and PasswordFile: HTTP basic auth with the password or
	// token in the file (Username defaults to "git" for a token).
	Username, PasswordFile string
	// CAFile adds PEM certificates for an HTTPS server.
	CAFile string
	// AuthorName and AuthorEmail sign the commits; "Palisade learning"
	// and "learning@palisade.invalid" by default.
	AuthorName, AuthorEmail string
	// Forge opens and edits the pull requests.
	Forge forge.Forge
	// BranchTimeout bounds the wait for the forge to show a pushed
	// branch before a pull request is opened; 60 s when zero.
	BranchTimeout time.Duration
	// Timeout bounds a whole Publish (clone, push, forge calls); 5
	// minutes when zero.
	Timeout time.Duration
}

// Publisher publishes Changes. Concurrent calls are serialised: two
// publishes of one ruleset at once would both see no pull request and
// open two.
type Publisher struct {
	mu     sync.Mutex
	o      Options
	secret string
	ca     []byte
}

// New validates the options and reads the files they name.
func New(o Options) (*Publisher, error) {
	if o.URL == "" {
		return nil, errors.New("pr: a repository URL is required")
	}
	if o.Forge == nil {
		return nil, errors.New("pr: a forge is required")
	}
	if o.AuthorName == "" {
		o.AuthorName = "Palisade learning"
	}
	if o.AuthorEmail == "" {
		o.AuthorEmail = "learning@palisade.invalid"
	}
	if o.BranchTimeout == 0 {
		o.BranchTimeout = 60 * time.Second
	}
	if o.Timeout == 0 {
		// A clone and a push of a policy repository take seconds; a stuck
		// server must not hold the publisher (and its lock) forever.
		o.Timeout = 5 * time.Minute
	}
	p := &Publisher{o: o}
	if o.PasswordFile != "" {
		raw, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("pr: read password file: %w", err)
		}
		p.secret = strings.TrimSpace(string(raw))
	}
	if o.CAFile != "" {
		var err error
		if p.ca, err = os.ReadFile(o.CAFile); err != nil {
			return nil, fmt.Errorf("pr: read CA file: %w", err)
		}
	}
	return p, nil
}

func (c *Change) validate() error {
	if c.Ruleset == "" || c.Base == "" || c.Files == nil {
		return errors.New("pr: a change needs a ruleset, a base branch and files")
	}
	if c.Branch == "" {
		c.Branch = BranchName(c.Ruleset)
	}
	if c.Branch == c.Base {
		return fmt.Errorf("pr: branch %q is the base branch", c.Branch)
	}
	if err := plumbing.NewBranchReferenceName(c.Branch).Validate(); err != nil {
		return fmt.Errorf("pr: branch %q: %w", c.Branch, err)
	}
	return nil
}

// Publish proposes c (see the package documentation for what it does).
func (p *Publisher) Publish(ctx context.Context, c Change) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	w, err := p.clone(ctx, c)
	if err != nil {
		return nil, p.redact(err)
	}
	files, err := c.Files(w.read)
	if err != nil {
		return nil, fmt.Errorf("pr: files of %s: %w", c.Ruleset, err)
	}
	if err := checkPaths(files); err != nil {
		return nil, err
	}
	key := ContentKey(files)
	res := Result{ContentKey: key}
	same, err := w.holds(files)
	if err != nil {
		return nil, err
	}
	if same {
		res.Action = UpToDate
		return &res, nil
	}
	body := strings.TrimRight(c.Body, "\n") + "\n\n" + Marker(c.Ruleset, key) + "\n"

	prs, err := p.o.Forge.FindPullRequests(ctx, c.Branch)
	if err != nil {
		return nil, fmt.Errorf("pr: %w", err)
	}
	var open *forge.PullRequest
	for i := range prs {
		if prs[i].Base == c.Base && prs[i].Open {
			open = &prs[i]
			break
		}
	}
	if open != nil {
		if rs, k, ok := ParseMarker(open.Body); ok && rs == c.Ruleset && k == key {
			res.Number, res.URL = open.Number, open.URL
			if sameText(open.Title, c.Title) && sameText(open.Body, body) {
				res.Action = Unchanged
				return &res, nil
			}
			if _, err := p.o.Forge.UpdatePullRequest(ctx, open.Number, c.Title, body); err != nil {
				return nil, fmt.Errorf("pr: %w", err)
			}
			res.Action = Updated
			return &res, nil
		}
	}
	for _, pr := range prs {
		if pr.Base != c.Base || pr.Open || pr.Merged {
			continue
		}
		if rs, k, ok := ParseMarker(pr.Body); ok && rs == c.Ruleset && k == key {
			res.Action, res.Number, res.URL = Declined, pr.Number, pr.URL
			return &res, nil
		}
	}
	if open != nil {
		if res.Commit, err = p.push(ctx, w, c, files); err != nil {
			return nil, err
		}
		if _, err := p.o.Forge.UpdatePullRequest(ctx, open.Number, c.Title, body); err != nil {
			return nil, fmt.Errorf("pr: %w", err)
		}
		res.Action, res.Number, res.URL = Updated, open.Number, open.URL
		return &res, nil
	}
	if res.Commit, err = p.push(ctx, w, c, files); err != nil {
		return nil, err
	}
	created, err := p.o.Forge.CreatePullRequest(ctx, c.Base, c.Branch, c.Title, body)
	if err != nil {
		return nil, fmt.Errorf("pr: %w", err)
	}
	res.Action, res.Number, res.URL = Created, created.Number, created.URL
	return &res, nil
}

// push commits files on the clone, force-pushes the branch and waits
// until the forge shows the pushed commit on it.
func (p *Publisher) push(ctx context.Context, w *work, c Change, files map[string][]byte) (string, error) {
	commit, err := w.commit(c, files, p.o.AuthorName, p.o.AuthorEmail)
	if err != nil {
		return "", err
	}
	if err := p.pushBranch(ctx, w, c); err != nil {
		return "", p.redact(err)
	}
	if err := p.waitBranch(ctx, c.Branch, commit); err != nil {
		return "", err
	}
	return commit, nil
}

func (p *Publisher) waitBranch(ctx context.Context, branch, commit string) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.BranchTimeout)
	defer cancel()
	var last error
	for {
		got, err := p.o.Forge.BranchCommit(ctx, branch)
		if err == nil && got == commit {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("forge shows commit %s", got)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pr: pushed %s to %s, but the forge does not show it: %w", commit, branch, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sameText compares texts as a forge may have stored them: with CRLF line
// ends or trailing white space trimmed.
func sameText(a, b string) bool {
	norm := func(s string) string { return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")) }
	return norm(a) == norm(b)
}

func checkPaths(files map[string][]byte) error {
	if len(files) == 0 {
		return errors.New("pr: the change has no files")
	}
	for p := range files {
		if !fs.ValidPath(p) || p == "." || p == ".git" || strings.HasPrefix(p, ".git/") {
			return fmt.Errorf("pr: invalid file path %q", p)
		}
	}
	return nil
}

// redact removes the secret from an error's text.
func (p *Publisher) redact(err error) error {
	if err == nil || p.secret == "" || !strings.Contains(err.Error(), p.secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), p.secret, "[redacted]"))
}
