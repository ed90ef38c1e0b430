package gogit_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-dev/palisade/reconciler"
	"github.com/palisade-dev/palisade/reconciler/gogit"
	"github.com/palisade-dev/palisade/test/gitserver"
)

func sync(t *testing.T, s *gogit.Source) *reconciler.Snapshot {
	t.Helper()
	snap, err := s.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func read(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSyncFollowsBranchOverHTTP(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	first := repo.Commit("first", map[string]string{"clusters/a.yaml": "one", "README.md": "x"})
	work := t.TempDir()
	src, err := gogit.New(gogit.Options{URL: repo.URL, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	snap := sync(t, src)
	if snap.Commit != first || read(t, snap.FS, "clusters/a.yaml") != "one" {
		t.Fatalf("first sync: commit %s, want %s", snap.Commit, first)
	}
	second := repo.Commit("second", map[string]string{"clusters/a.yaml": "two", "clusters/b.yaml": "b"})
	snap = sync(t, src)
	if snap.Commit != second || read(t, snap.FS, "clusters/a.yaml") != "two" {
		t.Fatalf("second sync: commit %s, want %s", snap.Commit, second)
	}
	entries, err := fs.ReadDir(snap.FS, "clusters")
	if err != nil || len(entries) != 2 || entries[0].Name() != "a.yaml" || entries[1].Name() != "b.yaml" {
		t.Fatalf("ReadDir(clusters) = %v, %v", entries, err)
	}
	// Unchanged remote: same commit, no error.
	if again := sync(t, src); again.Commit != second {
		t.Fatalf("idempotent sync moved to %s", again.Commit)
	}
	// Everything the source wrote is inside its working directory.
	err = filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !strings.HasPrefix(p, work) {
			t.Errorf("wrote %s outside %s", p, work)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSyncTagCommitAndSubdirectory(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	first := repo.Commit("first", map[string]string{"policy/clusters/a.yaml": "v1"})
	repo.Tag("v1")
	repo.Commit("second", map[string]string{"policy/clusters/a.yaml": "v2"})

	tagged, err := gogit.New(gogit.Options{URL: repo.URL, Tag: "v1", Dir: "policy", WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if snap := sync(t, tagged); snap.Commit != first || read(t, snap.FS, "clusters/a.yaml") != "v1" {
		t.Errorf("tag v1: commit %s", snap.Commit)
	}
	pinned, err := gogit.New(gogit.Options{URL: repo.URL, Commit: first, Dir: "/policy/", WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if snap := sync(t, pinned); snap.Commit != first || read(t, snap.FS, "clusters/a.yaml") != "v1" {
		t.Errorf("pinned commit: %s", snap.Commit)
	}
	missing, _ := gogit.New(gogit.Options{URL: repo.URL, Dir: "nope", WorkDir: t.TempDir()})
	if _, err := missing.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), `no directory "nope"`) {
		t.Errorf("missing subdirectory: %v", err)
	}
}

func TestSymlinksAreNotFollowed(t *testing.T) {
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	repo.Commit("file", map[string]string{"clusters/a.yaml": "a"})
	if err := os.Symlink("/etc/passwd", filepath.Join(repo.Work, "clusters", "evil.yaml")); err != nil {
		t.Fatal(err)
	}
	repo.Commit("symlink", nil)
	src, _ := gogit.New(gogit.Options{URL: repo.URL, WorkDir: t.TempDir()})
	snap := sync(t, src)
	if _, err := fs.ReadFile(snap.FS, "clusters/evil.yaml"); err == nil {
		t.Fatal("read through a symlink")
	}
	entries, _ := fs.ReadDir(snap.FS, "clusters")
	for _, e := range entries {
		if e.Name() == "evil.yaml" && e.Type().IsRegular() {
			t.Error("symlink listed as a regular file")
		}
	}
}

func TestOptionsAreValidated(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts gogit.Options
		want string
	}{
		{"two refs", gogit.Options{URL: "file:///x", Branch: "a", Tag: "b", WorkDir: dir}, "only one of branch, tag, commit"},
		{"short commit", gogit.Options{URL: "file:///x", Commit: "abc", WorkDir: dir}, "not a full SHA-1"},
		{"escaping subdirectory", gogit.Options{URL: "file:///x", Dir: "../etc", WorkDir: dir}, "invalid subdirectory"},
		{"ssh without known_hosts", gogit.Options{URL: "ssh://git@example.com/x.git", SSHKeyFile: "k", WorkDir: dir}, "known_hosts"},
		{"no workdir", gogit.Options{URL: "file:///x"}, "working directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gogit.New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := gogit.Redact("https://user:s3cret@git.example.com/acme/policy.git"); strings.Contains(got, "s3cret") || strings.Contains(got, "user") {
		t.Errorf("Redact = %s", got)
	}
	if got := gogit.Redact("git@github.com:acme/policy.git"); got != "git@github.com:acme/policy.git" {
		t.Errorf("Redact(scp) = %s", got)
	}
}

func TestSyncOverHTTPSWithBasicAuth(t *testing.T) {
	srv := gitserver.StartTLS(t, "palisade", "t0ken")
	repo := srv.NewRepo(t, "policy")
	want := repo.Commit("first", map[string]string{"a.yaml": "a"})
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := gogit.New(gogit.Options{URL: repo.URL, Username: "palisade", PasswordFile: good, CAFile: srv.CAFile, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if snap := sync(t, src); snap.Commit != want {
		t.Fatalf("commit %s, want %s", snap.Commit, want)
	}
	wrong, _ := gogit.New(gogit.Options{URL: repo.URL, Username: "palisade", PasswordFile: bad, CAFile: srv.CAFile, WorkDir: t.TempDir()})
	if _, err := wrong.Sync(context.Background()); err == nil {
		t.Error("wrong password accepted")
	}
	untrusted, _ := gogit.New(gogit.Options{URL: repo.URL, Username: "palisade", PasswordFile: good, WorkDir: t.TempDir()})
	if _, err := untrusted.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("server certificate not verified: %v", err)
	}
}

func TestImportDirFollowsTheSameCodePath(t *testing.T) {
	repoDir := filepath.Join(t.TempDir(), "repo")
	url, err := gogit.ImportDir("../../policies-example", repoDir)
	if err != nil {
		t.Fatal(err)
	}
	if !gogit.IsRepository(repoDir) || gogit.IsRepository(t.TempDir()) {
		t.Fatal("IsRepository is wrong")
	}
	src, err := gogit.New(gogit.Options{URL: url, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snap := sync(t, src)
	if !strings.Contains(read(t, snap.FS, "clusters/prod.yaml"), "kind: Policy") {
		t.Fatal("imported repository lacks the policy")
	}
}
