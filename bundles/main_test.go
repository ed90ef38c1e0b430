package bundles_test

import (
	"os"
	"testing"

	"github.com/palisade-dev/palisade/bundles"
)

// TestMain runs every decision of this package's tests through both
// evaluators (bundles.EvaluatorCheck) unless the environment chooses
// one: each test case is then also a differential test of irvm against
// topdown. Benchmarks choose their evaluator themselves.
func TestMain(m *testing.M) {
	if os.Getenv(bundles.EvaluatorEnv) == "" {
		os.Setenv(bundles.EvaluatorEnv, bundles.EvaluatorCheck)
	}
	os.Exit(m.Run())
}
