// Package gitserver runs a real Git server for tests: Debian's git, its
// smart-HTTP `git http-backend` behind net/http/cgi on loopback, and
// helpers that commit to the served repositories with the git CLI.
package gitserver

import (
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Server serves the bare repositories under Root at URL/<name>.git.
type Server struct {
	Root string
	URL  string
	// CAFile is the PEM certificate of a TLS server, empty otherwise.
	CAFile string
	srv    *httptest.Server
}

// Git returns the path of the git binary, failing the test when there is
// none (.ci/run installs it).
func Git(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git not installed: %v", err)
	}
	return p
}

// Start starts a plain-HTTP server for the test's lifetime.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false, "", "")
}

// StartTLS starts an HTTPS server that requires basic auth with user and
// password. CAFile names a PEM file holding its certificate.
func StartTLS(t testing.TB, user, password string) *Server {
	t.Helper()
	return start(t, true, user, password)
}

func start(t testing.TB, useTLS bool, user, password string) *Server {
	t.Helper()
	root := t.TempDir()
	h := &cgi.Handler{
		Path: Git(t),
		Args: []string{"http-backend"},
		Root: "/git",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + root,
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/git/", h)
	var handler http.Handler = mux
	if user != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	s := &Server{Root: root}
	if useTLS {
		s.srv = httptest.NewTLSServer(handler)
		s.CAFile = filepath.Join(root, "ca.pem")
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
		if err := os.WriteFile(s.CAFile, block, 0o600); err != nil {
			t.Fatal(err)
		}
	} else {
		s.srv = httptest.NewServer(handler)
	}
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/git"
	return s
}

// Repo is a served bare repository and a work tree that pushes to it.
type Repo struct {
	Name string
	Bare string
	Work string
	// URL is the repository's smart-HTTP address.
	URL string
	t   testing.TB
}

// NewRepo creates an empty bare repository with default branch main and a
// clone to commit from.
func (s *Server) NewRepo(t testing.TB, name string) *Repo {
	t.Helper()
	r := &Repo{Name: name, Bare: filepath.Join(s.Root, name+".git"), Work: filepath.Join(t.TempDir(), name), URL: s.URL + "/" + name + ".git", t: t}
	r.git("", "init", "--quiet", "--bare", "--initial-branch=main", r.Bare)
	r.git(r.Bare, "config", "http.receivepack", "true")
	r.git("", "init", "--quiet", "--initial-branch=main", r.Work)
	r.git(r.Work, "remote", "add", "origin", r.Bare)
	return r
}

func (r *Repo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(Git(r.t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Palisade Test", "GIT_AUTHOR_EMAIL=test@palisade.dev",
		"GIT_COMMITTER_NAME=Palisade Test", "GIT_COMMITTER_EMAIL=test@palisade.dev",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path → content; empty content deletes the file)
// into the work tree, commits them on main and pushes. It returns the
// commit SHA.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git(r.Work, "add", "--all")
	r.git(r.Work, "commit", "--quiet", "--allow-empty", "-m", msg)
	r.git(r.Work, "push", "--quiet", "origin", "HEAD:main")
	return r.git(r.Work, "rev-parse", "HEAD")
}

// CopyDir commits a directory tree (such as policies-example) as it is.
func (r *Repo) CopyDir(msg, dir string) string {
	r.t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return r.Commit(msg, files)
}

// Tag creates a lightweight tag at HEAD and pushes it.
func (r *Repo) Tag(name string) {
	r.t.Helper()
	r.git(r.Work, "tag", name)
	r.git(r.Work, "push", "--quiet", "origin", name)
}

// Push pushes the work tree's HEAD to main, for commits made by other
// means than Commit (go-git, to sign them).
func (r *Repo) Push() string {
	r.t.Helper()
	r.git(r.Work, "push", "--quiet", "origin", "HEAD:main")
	return r.git(r.Work, "rev-parse", "HEAD")
}
