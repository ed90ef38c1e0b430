package gogit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/palisade-dev/palisade/reconciler"
	"github.com/palisade-dev/palisade/reconciler/gogit"
	"github.com/palisade-dev/palisade/test/gitserver"
)

func newKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@palisade.dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, buf.String()
}

// signedCommit commits a file in the work tree with go-git, signed by key.
func signedCommit(t *testing.T, repo *gitserver.Repo, key *openpgp.Entity, content string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(repo.Work, "signed.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := git.PlainOpen(repo.Work)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("signed.yaml"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Admin", Email: "admin@palisade.dev", When: time.Now()}
	if _, err := wt.Commit("signed change", &git.CommitOptions{Author: sig, Committer: sig, SignKey: key}); err != nil {
		t.Fatal(err)
	}
	return repo.Push()
}

func TestCommitSignatureVerification(t *testing.T) {
	trusted, keyring := newKey(t, "admin")
	stranger, _ := newKey(t, "stranger")
	ringFile := filepath.Join(t.TempDir(), "keyring.asc")
	if err := os.WriteFile(ringFile, []byte(keyring), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := gitserver.Start(t)
	repo := srv.NewRepo(t, "policy")
	repo.Commit("unsigned", map[string]string{"a.yaml": "a"})
	src, err := gogit.New(gogit.Options{URL: repo.URL, WorkDir: t.TempDir(), KeyringFile: ringFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Sync(context.Background()); !errors.Is(err, reconciler.ErrUnverified) {
		t.Fatalf("unsigned commit: err = %v, want ErrUnverified", err)
	}
	good := signedCommit(t, repo, trusted, "v1")
	snap, err := src.Sync(context.Background())
	if err != nil || snap.Commit != good {
		t.Fatalf("commit signed by a trusted key: %v (commit %v)", err, snap)
	}
	signedCommit(t, repo, stranger, "v2")
	if _, err := src.Sync(context.Background()); !errors.Is(err, reconciler.ErrUnverified) {
		t.Fatalf("commit signed by an unknown key: err = %v, want ErrUnverified", err)
	}
}
