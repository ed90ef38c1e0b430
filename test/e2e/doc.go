// Package e2e holds Palisade's end-to-end tests: the real palisade binary,
// built by TestMain, against real components on loopback — a Git server
// (Debian's git http-backend), the bundle service and its clients.
package e2e
