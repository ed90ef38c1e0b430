package agent

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// The hand-written Line encoder writes exactly what encoding/json's
// Encoder wrote before it: the streams' bytes do not change. Checked on
// strings that need every kind of escape, and on random bytes.
func TestLineEncodingMatchesEncodingJSON(t *testing.T) {
	tricky := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "ctl \x00\x01\x08\x0c\n\r\t\x1f\x7f",
		"é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8 \xc3", "\xed\xa0\x80 surrogate", "/var/log/app.log"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		tricky = append(tricky, string(b))
	}
	times := []time.Time{time.Date(2026, 12, 2, 4, 5, 6, 789000000, time.UTC), time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		time.Unix(0, 1).UTC(), {}, time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i, s := range tricky {
		l := Line{Time: times[i%len(times)], Node: "n", Namespace: s, Pod: "p" + s, Container: "c", Image: s, Operation: "exec",
			Path: s, Process: "/bin/" + s, Ruleset: "r", Actions: []string{"alert", s}, Stream: "alert"}
		if i%7 == 0 {
			l.Actions = nil
		}
		var want bytes.Buffer
		wantErr := json.NewEncoder(&want).Encode(l)
		var got bytes.Buffer
		gotErr := (&lineWriter{w: &got}).write(&l)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("line %d: error %v, encoding/json's %v", i, gotErr, wantErr)
		}
		if wantErr == nil && got.String() != want.String() {
			t.Fatalf("line %d:\n got %q\nwant %q", i, got.String(), want.String())
		}
	}
}
