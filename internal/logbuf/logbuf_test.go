package logbuf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLinesWaitThenArriveWithinTheInterval(t *testing.T) {
	// A file: the flusher writes it while the test reads it, and the
	// kernel orders the two.
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	written := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	w := New(f)
	defer w.Stop()
	log := slog.New(slog.NewJSONHandler(w, nil))
	start := time.Now()
	log.Info("admission decision", "uid", "u1")
	if got := written(); got != "" {
		t.Fatalf("the line was written at once (%q): it should wait for the flush", got)
	}
	for written() == "" {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the line was not written within 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if waited := time.Since(start); waited < FlushInterval/2 {
		t.Errorf("the line was written after %v; the buffer flushes every %v", waited, FlushInterval)
	}
	var line struct{ Msg, UID string }
	if err := json.Unmarshal([]byte(written()), &line); err != nil || line.Msg != "admission decision" || line.UID != "u1" {
		t.Fatalf("written %q (%v), want the decision line", written(), err)
	}
}

func TestStopWritesEverythingAndCallsNoSync(t *testing.T) {
	// A pipe, as stderr is under a container runtime: an fsync of it
	// fails, and Stop must not report that.
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := make(chan []byte)
	go func() {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		read <- b.Bytes()
	}()
	w := New(pw)
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	pw.Close()
	lines := strings.Split(strings.TrimSuffix(string(<-read), "\n"), "\n")
	if len(lines) != 1000 || lines[0] != "line 0" || lines[999] != "line 999" {
		t.Fatalf("read %d lines (first %q), want line 0 … line 999", len(lines), lines[0])
	}
}

func TestConcurrentRecordsStayWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f)
	log := slog.New(slog.NewJSONHandler(w, nil))
	// Records bigger than the buffer's share pass Size often: a flush
	// in the middle of the writers must never cut a record.
	pad := strings.Repeat("x", 3000)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				log.Info("decision", "g", g, "i", i, "pad", pad)
			}
		})
	}
	wg.Wait()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var rec struct{ G, I int }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not a whole record: %v", n+1, err)
		}
		seen[[2]int{rec.G, rec.I}] = true
	}
	if len(seen) != 16*200 {
		t.Fatalf("%d distinct records, want %d", len(seen), 16*200)
	}
}
