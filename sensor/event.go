package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Op is an operation in the Elastic Defend for Containers vocabulary, as
// a RuntimeRuleset names it. The values are bpf/sensor.c's enum op.
type Op uint32

const (
	OpFork             Op = 1
	OpExec             Op = 2
	OpCreateFile       Op = 3
	OpModifyFile       Op = 4
	OpDeleteFile       Op = 5
	OpCreateExecutable Op = 6
	OpModifyExecutable Op = 7
)

var opNames = map[Op]string{
	OpFork:             "fork",
	OpExec:             "exec",
	OpCreateFile:       "createFile",
	OpModifyFile:       "modifyFile",
	OpDeleteFile:       "deleteFile",
	OpCreateExecutable: "createExecutable",
	OpModifyExecutable: "modifyExecutable",
}

// String returns the operation's name in a RuntimeRuleset.
func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Op(%d)", uint32(o))
}

// Event is one operation of a process in a watched container.
type Event struct {
	Op Op
	// PID is the process (thread group) id, TID the thread's, PPID the
	// parent process's: host pids, as the node sees them. For OpFork, PID
	// is the new process and PPID the one that forked it.
	PID, TID, PPID uint32
	// Comm is the thread's name (at most 15 bytes).
	Comm string
	// Path is the file operated on, or the executable for OpExec (the
	// file the kernel runs: symlinks resolved, so /bin/sh reads as
	// /bin/busybox in a busybox image) and OpFork (the parent's). It is
	// absolute as the container sees it, cleaned lexically.
	Path string
	// Argv is the new program's argument vector (OpExec only), cut at
	// 1 KiB; ArgvTruncated says it was.
	Argv []string
	// Interactive is true when the process has a controlling terminal.
	Interactive bool
	// PathTruncated says Path lost leading components (deeper than 64
	// or longer than 4 KiB); what is left is the path's tail.
	PathTruncated, ArgvTruncated bool
	// CgroupID is the process's cgroup v2 id, the key Watch was given.
	CgroupID uint64
	// Time is when the kernel saw the operation.
	Time time.Time
}

// Event flags, as bpf/sensor.c sets them.
const (
	flagInteractive   = 1
	flagPathTruncated = 2
	flagArgvTruncated = 4
)

var hdrSize = binary.Size(sensorEventHdr{})

var errShortEvent = errors.New("event shorter than its header says")

// decodeEvent parses a ring buffer record: the fixed header, then the path
// bytes, then NUL-separated argv. mono0 and wall0 are one instant on the
// monotonic and wall clocks, to place the kernel's timestamp.
func decodeEvent(raw []byte, mono0 time.Duration, wall0 time.Time) (Event, error) {
	var h sensorEventHdr
	if _, err := binary.Decode(raw, binary.LittleEndian, &h); err != nil {
		return Event{}, fmt.Errorf("decode event header: %w", err)
	}
	rest := raw[hdrSize:]
	if len(rest) < int(h.PathLen)+int(h.ArgvLen) {
		return Event{}, errShortEvent
	}
	ev := Event{
		Op:            Op(h.Op),
		PID:           h.Pid,
		TID:           h.Tid,
		PPID:          h.Ppid,
		Comm:          cString(h.Comm[:]),
		Interactive:   h.Flags&flagInteractive != 0,
		PathTruncated: h.Flags&flagPathTruncated != 0,
		ArgvTruncated: h.Flags&flagArgvTruncated != 0,
		CgroupID:      h.CgroupId,
		Time:          wall0.Add(time.Duration(h.KtimeNs) - mono0),
	}
	if h.PathLen > 0 {
		// The kernel joins a relative path to its directory without
		// resolving "." or "..": clean here, lexically (a ".." after a
		// symlink may name another directory than the kernel used).
		ev.Path = path.Clean(string(rest[:h.PathLen]))
	}
	if h.ArgvLen > 0 {
		argv := strings.TrimRight(string(rest[h.PathLen:int(h.PathLen)+int(h.ArgvLen)]), "\x00")
		ev.Argv = strings.Split(argv, "\x00")
	}
	return ev, nil
}

func cString(b []int8) string {
	u := make([]byte, len(b))
	for i, c := range b {
		u[i] = byte(c)
	}
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}
