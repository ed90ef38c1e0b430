package match_test

import (
	"fmt"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
	"github.com/palisade-dev/palisade/sensor/match"
)

func Example() {
	repo, err := policy.LoadDir("../../policies-example")
	if err != nil {
		panic(err)
	}
	b, err := bundles.Build(repo, "prod", "example")
	if err != nil {
		panic(err)
	}
	m, err := match.FromBundle(b)
	if err != nil {
		panic(err)
	}
	web := &bundles.Container{ImageFullName: "ghcr.io/acme/web", Namespace: "shop", PodName: "web-1"}
	for _, ev := range []*bundles.RuntimeEvent{
		{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/usr/local/bin/miner"},
		{Kind: bundles.EventFile, Operation: "createExecutable", Path: "/tmp/build/a.out"},
		{Kind: bundles.EventProcess, Operation: "exec", Path: "/bin/bash", ProcessExecutable: "/bin/bash", ProcessName: "bash", Interactive: true},
	} {
		d := m.Match(ev, web)
		fmt.Println(ev.Operation, ev.Path, d.Actions)
	}
	// Output:
	// createExecutable /usr/local/bin/miner [alert block]
	// createExecutable /tmp/build/a.out []
	// exec /bin/bash [alert]
}
