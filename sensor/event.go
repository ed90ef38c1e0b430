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

var opNames = [...]string{
	OpFork:             "fork",
	OpExec:             "exec",
	OpCreateFile:       "createFile",
	OpModifyFile:       "modifyFile",
	OpDeleteFile:       "deleteFile",
	OpCreateExecutable: "createExecutable",
	OpModifyExecutable: "modifyExecutable",
}

// String returns the operation's name in a RuntimeRuleset. It is asked
// for every event, so the names are an array, not a map.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
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

// hdrSize and the offsets decode reads are struct event_hdr's layout (the
// generated sensorEventHdr), which TestHeaderLayout checks.
const hdrSize = 56

var (
	errShortHeader = errors.New("event shorter than its header")
	errShortEvent  = errors.New("event shorter than its header says")
)

// maxComms bounds a decoder's table of thread names; past it the table
// starts over.
const maxComms = 4096

// decoder parses ring buffer records into Events. It remembers the thread
// names (comm) it has seen, so that an event's Comm costs no allocation:
// a node runs few distinct names. One goroutine uses a decoder: the
// Probe's reader.
type decoder struct {
	comms map[[16]byte]string
}

// decode parses a ring buffer record: the fixed header, then the path
// bytes, then NUL-separated argv. mono0 and wall0 are one instant on the
// monotonic and wall clocks, to place the kernel's timestamp. The header
// is read field by field at fixed offsets: encoding/binary's reflection
// cost more than the rest of the decode.
func (d *decoder) decode(raw []byte, mono0 time.Duration, wall0 time.Time) (Event, error) {
	if len(raw) < hdrSize {
		return Event{}, errShortHeader
	}
	le := binary.LittleEndian
	pathLen, argvLen := int(le.Uint16(raw[36:])), int(le.Uint16(raw[38:]))
	rest := raw[hdrSize:]
	if len(rest) < pathLen+argvLen {
		return Event{}, errShortEvent
	}
	flags := le.Uint32(raw[32:])
	ev := Event{
		Op:            Op(le.Uint32(raw[28:])),
		PID:           le.Uint32(raw[16:]),
		TID:           le.Uint32(raw[20:]),
		PPID:          le.Uint32(raw[24:]),
		Comm:          d.comm(raw[40:56]),
		Interactive:   flags&flagInteractive != 0,
		PathTruncated: flags&flagPathTruncated != 0,
		ArgvTruncated: flags&flagArgvTruncated != 0,
		CgroupID:      le.Uint64(raw[8:]),
		Time:          wall0.Add(time.Duration(le.Uint64(raw[0:])) - mono0),
	}
	if pathLen > 0 {
		// The kernel joins a relative path to its directory without
		// resolving "." or "..": clean here, lexically (a ".." after a
		// symlink may name another directory than the kernel used).
		ev.Path = cleanPath(rest[:pathLen])
	}
	if argvLen > 0 {
		argv := strings.TrimRight(string(rest[pathLen:pathLen+argvLen]), "\x00")
		ev.Argv = strings.Split(argv, "\x00")
	}
	return ev, nil
}

// comm returns the NUL-terminated name in b (16 bytes, zero-padded by
// the kernel), from the table when it has been seen before.
func (d *decoder) comm(b []byte) string {
	var key [16]byte
	copy(key[:], b)
	if s, ok := d.comms[key]; ok {
		return s
	}
	n := bytes.IndexByte(key[:], 0)
	if n < 0 {
		n = len(key)
	}
	s := string(key[:n])
	if d.comms == nil || len(d.comms) >= maxComms {
		d.comms = make(map[[16]byte]string)
	}
	d.comms[key] = s
	return s
}

// cleanPath returns b as a string, cleaned lexically as path.Clean does.
// Nearly every path the kernel reports is clean already: absolute, with no
// "//", no "." or ".." element (each would follow a "/") and no trailing
// slash, which a few vectorised searches tell faster than Clean's walk of
// every byte.
func cleanPath(b []byte) string {
	if len(b) > 0 && b[0] == '/' && (len(b) == 1 || b[len(b)-1] != '/') &&
		!bytes.Contains(b, []byte("//")) && !bytes.Contains(b, []byte("/.")) {
		return string(b)
	}
	return path.Clean(string(b))
}
