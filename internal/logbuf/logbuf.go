// Package logbuf buffers a serving process's log lines off the request
// path.
//
// An admission review's decision is logged as one JSON line. Written
// straight to stderr, every review made a write(2) of its own, under the
// slog handler's lock, before net/http's HTTP/2 server could send the
// response: at 1,000 reviews/s on two vCPUs that was 30–40 µs of CPU per
// review, and a review waiting for the lock while another's write was
// descheduled took milliseconds (bench/admission: the handler's p99 went
// from 7.1 ms to 1.4–1.8 ms in three of four runs with the lines buffered).
//
// New buffers lines in memory (zapcore.BufferedWriteSyncer) and writes
// them out together at most FlushInterval later, sooner when Size bytes
// are waiting, and at Stop. The decision made: a process killed without
// Stop (SIGKILL, an OOM kill) loses at most the last FlushInterval of
// lines; a panic's message goes to stderr directly and is not delayed.
// A log line is still written whole: slog's handlers hand a record to
// Write in one call, and the buffer never splits a call.
package logbuf

import (
	"io"
	"time"

	"go.uber.org/zap/zapcore"
)

const (
	// FlushInterval bounds how long a line waits in memory.
	FlushInterval = 50 * time.Millisecond
	// Size is the most that waits: a write that would pass it first
	// writes out what is buffered.
	Size = 256 << 10
)

// New returns a writer that buffers whole writes to w. Stop it to write
// out what remains; lines written after Stop are never written.
func New(w io.Writer) *zapcore.BufferedWriteSyncer {
	// AddSync of a plain io.Writer syncs as a no-op: an *os.File's Sync
	// would fsync a log file every interval, and fails on a pipe.
	return &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(writerOnly{w}), Size: Size, FlushInterval: FlushInterval}
}

// writerOnly hides every method of its writer but Write.
type writerOnly struct{ io.Writer }
