package sensor

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

func record(h sensorEventHdr, data string) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, h)
	if err != nil {
		panic(err)
	}
	return append(b, data...)
}

// errAny stands for an error whose kind the test does not pin down.
var errAny = errors.New("any error")

func TestDecodeEvent(t *testing.T) {
	wall0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mono0 := 100 * time.Second
	comm := [16]int8{'s', 'h'}
	for _, tc := range []struct {
		name string
		raw  []byte
		want Event
		err  error
	}{
		{name: "exec with argv and tty",
			raw: record(sensorEventHdr{KtimeNs: uint64(101 * time.Second), CgroupId: 7, Pid: 10, Tid: 11, Ppid: 9,
				Op: uint32(OpExec), Flags: flagInteractive, PathLen: 12, ArgvLen: 12, Comm: comm}, "/bin/busybox/bin/sh\x00-i\x00\x00"),
			want: Event{Op: OpExec, PID: 10, TID: 11, PPID: 9, Comm: "sh", Path: "/bin/busybox",
				Argv: []string{"/bin/sh", "-i"}, Interactive: true, CgroupID: 7, Time: wall0.Add(time.Second)}},
		{name: "relative path joined by the kernel is cleaned",
			raw:  record(sensorEventHdr{Op: uint32(OpDeleteFile), PathLen: 13, Flags: flagPathTruncated}, "/tmp/./a/../f"),
			want: Event{Op: OpDeleteFile, Path: "/tmp/f", PathTruncated: true, Time: wall0.Add(-mono0)}},
		{name: "lengths beyond the record", raw: record(sensorEventHdr{PathLen: 40}, "/short"), err: errShortEvent},
		{name: "shorter than a header", raw: []byte{1, 2, 3}, err: errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeEvent(tc.raw, mono0, wall0)
			if tc.err != nil {
				if err == nil || (tc.err != errAny && !errors.Is(err, tc.err)) {
					t.Fatalf("got %+v, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Op != tc.want.Op || got.PID != tc.want.PID || got.TID != tc.want.TID || got.PPID != tc.want.PPID ||
				got.Comm != tc.want.Comm || got.Path != tc.want.Path || !slices.Equal(got.Argv, tc.want.Argv) ||
				got.Interactive != tc.want.Interactive || got.PathTruncated != tc.want.PathTruncated ||
				got.CgroupID != tc.want.CgroupID || !got.Time.Equal(tc.want.Time) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpFork: "fork", OpExec: "exec", OpCreateExecutable: "createExecutable",
		OpModifyExecutable: "modifyExecutable", OpDeleteFile: "deleteFile", Op(99): "Op(99)"} {
		if got := op.String(); got != want {
			t.Errorf("%d: %q, want %q", uint32(op), got, want)
		}
	}
}
