package pr_test

import (
	"fmt"

	"github.com/palisade-dev/palisade/learning/pr"
)

// The branch a ruleset's proposals are pushed to, and the marker that
// ends their body: the forge remembers what was proposed (and declined).
// The key is pinned here: changing how it is computed would make every
// declined proposal look new again.
func ExampleMarker() {
	files := map[string][]byte{"learned/shop.yaml": []byte("kind: LearnedRules\n")}
	fmt.Println(pr.BranchName("shop"))
	fmt.Println(pr.Marker("shop", pr.ContentKey(files)))
	// Output:
	// palisade/learn/shop
	// <!-- palisade-learn ruleset="shop" content=4175c796d434028ca666afe58dfb919d283ea9684eefcb9c05c143ca2e1cce9b -->
}
