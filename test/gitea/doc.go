// Package gitea runs a real Gitea server on loopback for tests: the
// binary hack/build-gitea.sh builds into the tools cache (`make
// gitea-bin`), a fresh SQLite database per server, an admin user with an
// API token, and helpers that create repositories and merge or close pull
// requests through Gitea's API.
//
// The server runs as root only because GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT
// is set for it; it runs in a process group of its own, which the test's
// cleanup kills as a whole (and the kernel kills Gitea itself should the
// test binary die). A missing binary fails the test, never skips it.
package gitea
