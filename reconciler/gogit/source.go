package gogit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/palisade-dev/palisade/reconciler"
)

// Options configure a Source. Secrets are read from files, never taken
// on the command line.
type Options struct {
	// URL of the repository: https://, http:// (tests only), ssh://,
	// user@host:path (SSH) or file://.
	URL string
	// Exactly one of Branch, Tag, Commit; Branch "main" when none is set.
	Branch, Tag, Commit string
	// Dir is the subdirectory of the repository that holds the policy.
	Dir string
	// WorkDir holds the bare repository. Nothing is written outside it.
	WorkDir string

	// HTTPS: basic auth with Username and the password or token in
	// PasswordFile (for a token without a user, Username defaults to "git").
	Username, PasswordFile string
	// CAFile adds a CA bundle for HTTPS servers.
	CAFile string
	// SSH: a private key file (its passphrase in PassphraseFile, if any)
	// and a known_hosts file, which is required: host keys are checked.
	SSHKeyFile, PassphraseFile, KnownHostsFile string

	// Keyring, when set, is an armored OpenPGP keyring file: the followed
	// commit must be signed by one of its keys.
	KeyringFile string
}

// Source fetches a Git repository with go-git.
type Source struct {
	opts    Options
	auth    transport.AuthMethod
	ca      []byte
	keyring string
	refSpec config.RefSpec
	local   plumbing.ReferenceName
	depth   int
}

var _ reconciler.Source = (*Source)(nil)

// New validates the options and reads the credentials they name.
func New(o Options) (*Source, error) {
	s := &Source{opts: o}
	set := 0
	for _, v := range []string{o.Branch, o.Tag, o.Commit} {
		if v != "" {
			set++
		}
	}
	switch {
	case set > 1:
		return nil, errors.New("git source: set only one of branch, tag, commit")
	case o.WorkDir == "":
		return nil, errors.New("git source: a working directory is required")
	case o.Dir != "" && (!fs.ValidPath(strings.Trim(o.Dir, "/")) || strings.Contains(o.Dir, "..")):
		return nil, fmt.Errorf("git source: invalid subdirectory %q", o.Dir)
	}
	if set == 0 {
		s.opts.Branch = "main"
	}
	switch {
	case s.opts.Branch != "":
		s.refSpec = config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%[1]s", s.opts.Branch))
		s.local = plumbing.NewRemoteReferenceName("origin", s.opts.Branch)
		s.depth = 1
	case s.opts.Tag != "":
		s.refSpec = config.RefSpec(fmt.Sprintf("+refs/tags/%s:refs/tags/%[1]s", s.opts.Tag))
		s.local = plumbing.NewTagReferenceName(s.opts.Tag)
		s.depth = 1
	default:
		if !plumbing.IsHash(s.opts.Commit) {
			return nil, fmt.Errorf("git source: commit %q is not a full SHA-1", s.opts.Commit)
		}
		// A pinned commit may be anywhere in history: fetch every branch
		// in full (servers seldom allow fetching an unadvertised SHA).
		s.refSpec = config.RefSpec("+refs/heads/*:refs/remotes/origin/*")
	}
	if err := s.refSpec.Validate(); err != nil {
		return nil, fmt.Errorf("git source: invalid ref: %w", err)
	}
	var err error
	if s.auth, err = authMethod(o); err != nil {
		return nil, err
	}
	if o.CAFile != "" {
		if s.ca, err = os.ReadFile(o.CAFile); err != nil {
			return nil, fmt.Errorf("git source: read CA file: %w", err)
		}
	}
	if o.KeyringFile != "" {
		raw, err := os.ReadFile(o.KeyringFile)
		if err != nil {
			return nil, fmt.Errorf("git source: read keyring: %w", err)
		}
		s.keyring = string(raw)
	}
	return s, nil
}

func authMethod(o Options) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		return nil, fmt.Errorf("git source: invalid URL: %w", err)
	}
	switch ep.Protocol {
	case "http", "https":
		if o.PasswordFile == "" {
			return nil, nil
		}
		secret, err := readSecret(o.PasswordFile)
		if err != nil {
			return nil, err
		}
		user := o.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: secret}, nil
	case "ssh":
		if o.SSHKeyFile == "" || o.KnownHostsFile == "" {
			return nil, errors.New("git source: SSH needs a key file and a known_hosts file")
		}
		passphrase := ""
		if o.PassphraseFile != "" {
			if passphrase, err = readSecret(o.PassphraseFile); err != nil {
				return nil, err
			}
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, passphrase)
		if err != nil {
			return nil, fmt.Errorf("git source: read SSH key: %w", err)
		}
		if keys.HostKeyCallback, err = gitssh.NewKnownHostsCallback(o.KnownHostsFile); err != nil {
			return nil, fmt.Errorf("git source: read known_hosts: %w", err)
		}
		return keys, nil
	case "file":
		return nil, nil
	}
	return nil, fmt.Errorf("git source: unsupported protocol %q", ep.Protocol)
}

func readSecret(file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("git source: read secret file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// URL returns the repository address without credentials.
func (s *Source) URL() string { return Redact(s.opts.URL) }

// Redact removes credentials from a URL.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// scp-like SSH addresses carry a user, never a secret.
		return raw
	}
	u.User = nil
	return u.String()
}

func (s *Source) open() (*git.Repository, error) {
	dir := filepath.Join(s.opts.WorkDir, "repo.git")
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
		if err == nil {
			_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open local repository: %w", err)
	}
	return repo, nil
}

// Sync fetches the followed ref and returns its commit.
func (s *Source) Sync(ctx context.Context) (*reconciler.Snapshot, error) {
	repo, err := s.open()
	if err != nil {
		return nil, err
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  s.opts.URL,
		RefSpecs:   []config.RefSpec{s.refSpec},
		Depth:      s.depth,
		Auth:       s.auth,
		Tags:       git.NoTags,
		Force:      true,
		CABundle:   s.ca,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch %s: %w", s.URL(), err)
	}
	hash, err := s.resolve(repo)
	if err != nil {
		return nil, err
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	if s.keyring != "" {
		if _, err := commit.Verify(s.keyring); err != nil {
			return nil, fmt.Errorf("commit %s: %w: %v", hash, reconciler.ErrUnverified, err)
		}
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", hash, err)
	}
	snap := &reconciler.Snapshot{Commit: hash.String(), Time: commit.Committer.When}
	snap.FS, err = s.subtree(tree, commit)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

func (s *Source) resolve(repo *git.Repository) (plumbing.Hash, error) {
	if s.opts.Commit != "" {
		return plumbing.NewHash(s.opts.Commit), nil
	}
	ref, err := repo.Reference(s.local, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: %w", s.local, err)
	}
	// An annotated tag points at a tag object: follow it to the commit.
	if tag, err := repo.TagObject(ref.Hash()); err == nil {
		c, err := tag.Commit()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("resolve tag %s: %w", s.opts.Tag, err)
		}
		return c.Hash, nil
	}
	return ref.Hash(), nil
}

func (s *Source) subtree(tree *object.Tree, commit *object.Commit) (fs.FS, error) {
	dir := strings.Trim(path.Clean("/"+s.opts.Dir), "/")
	if dir != "" {
		sub, err := tree.Tree(dir)
		if err != nil {
			return nil, fmt.Errorf("commit %s has no directory %q: %w", commit.Hash, dir, err)
		}
		tree = sub
	}
	return &treeFS{root: tree, time: commit.Committer.When}, nil
}
