//go:build tools

// Package tools records the etcd server that hack/build-k8s.sh builds, so
// that `go mod tidy` keeps its dependencies in go.sum.
package tools

import _ "go.etcd.io/etcd/server/v3"
