package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkPushToClient measures, over 50 policy commits, the time from
// the push webhook to a bundle client holding the new revision: fetch,
// validate, build, sign, publish, long-poll wake-up, download, verify and
// compile. It reports p50 and p99 in milliseconds. Run it with
// -benchtime 1x: one iteration is 50 commits.
func BenchmarkPushToClient(b *testing.B) {
	for b.Loop() {
		g := newGitOps(b)
		first := g.repo.Push()
		g.ctrl.push(b, webhookSecret, first)
		client, _ := g.client(b, b.TempDir())
		waitFor(b, 30*time.Second, "first revision", func() bool { return client.Revision() == first })
		example := readExample(b)
		var lat []time.Duration
		for i := range 50 {
			content := replaceOnce(b, example, "digestPinning: {action: log}", fmt.Sprintf("digestPinning: {action: log, description: \"change %d\"}", i))
			commit := g.repo.Commit(fmt.Sprintf("change %d", i), map[string]string{"clusters/prod.yaml": content})
			start := time.Now()
			g.ctrl.push(b, webhookSecret, commit)
			waitFor(b, 30*time.Second, "client holds the revision", func() bool { return client.Revision() == commit })
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}
