package rego

import "embed"

// FS holds the Rego library: every .rego file under palisade/, tests
// included (the bundle builder leaves *_test.rego out).
//
//go:embed palisade
var FS embed.FS
