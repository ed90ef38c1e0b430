package reconciler

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// Source is where policy comes from: a Git repository following one
// branch, tag or commit. Implementations live in subpackages named for
// their dependency (gogit).
type Source interface {
	// Sync brings the local copy up to date with the remote and returns the
	// commit it now points at, with a read-only view of its tree (limited
	// to the configured subdirectory). It returns ErrUnverified, wrapped,
	// when signature verification is on and the commit is not signed by a
	// trusted key; any other error is a fetch failure worth retrying.
	Sync(ctx context.Context) (*Snapshot, error)
	// URL is the repository's address without credentials, for status
	// and logs.
	URL() string
}

// Snapshot is one commit of the policy repository.
type Snapshot struct {
	Commit string
	// Time is the commit's committer time.
	Time time.Time
	// FS holds the commit's tree below the configured subdirectory.
	FS fs.FS
}

// ErrUnverified is returned (wrapped) by Source.Sync when the commit is not
// signed by a key of the configured keyring.
var ErrUnverified = errors.New("commit signature not verified")
