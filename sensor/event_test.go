package sensor

import (
	"encoding/binary"
	"errors"
	"path"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func record(h sensorEventHdr, data string) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, h)
	if err != nil {
		panic(err)
	}
	return append(b, data...)
}

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
		{name: "shorter than a header", raw: []byte{1, 2, 3}, err: errShortHeader},
		{name: "comm of 16 bytes, no NUL", raw: record(sensorEventHdr{Op: uint32(OpFork),
			Comm: [16]int8{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'}}, ""),
			want: Event{Op: OpFork, Comm: "abcdefghijklmnop", Time: wall0.Add(-mono0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d decoder
			got, err := d.decode(tc.raw, mono0, wall0)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
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

// The decoder reads struct event_hdr at fixed offsets: they must be the
// generated type's.
func TestHeaderLayout(t *testing.T) {
	var h sensorEventHdr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(h), hdrSize},
		{"ktime_ns", unsafe.Offsetof(h.KtimeNs), 0},
		{"cgroup_id", unsafe.Offsetof(h.CgroupId), 8},
		{"pid", unsafe.Offsetof(h.Pid), 16},
		{"tid", unsafe.Offsetof(h.Tid), 20},
		{"ppid", unsafe.Offsetof(h.Ppid), 24},
		{"op", unsafe.Offsetof(h.Op), 28},
		{"flags", unsafe.Offsetof(h.Flags), 32},
		{"path_len", unsafe.Offsetof(h.PathLen), 36},
		{"argv_len", unsafe.Offsetof(h.ArgvLen), 38},
		{"comm", unsafe.Offsetof(h.Comm), 40},
	} {
		if f.got != f.want {
			t.Errorf("event_hdr %s: %d, decode assumes %d", f.name, f.got, f.want)
		}
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

// BenchmarkDecodeEvent measures the user-space cost of one typical file
// event (header, comm, a path): what the reader goroutine pays per event
// after the ring buffer hands it the record.
func BenchmarkDecodeEvent(b *testing.B) {
	raw := record(sensorEventHdr{KtimeNs: uint64(101 * time.Second), CgroupId: 7, Pid: 10, Tid: 11, Ppid: 9,
		Op: uint32(OpModifyFile), PathLen: 27, Comm: [16]int8{'n', 'g', 'i', 'n', 'x'}}, "/var/cache/nginx/proxy/a/b1")
	var d decoder
	mono0, wall0 := 100*time.Second, time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.decode(raw, mono0, wall0)
		if err != nil || ev.Comm != "nginx" || len(ev.Path) != 27 {
			b.Fatalf("%+v, %v", ev, err)
		}
	}
}

// cleanPath's shortcut for paths already clean gives what path.Clean
// gives, on every shape of path the kernel may report.
func TestCleanPathMatchesPathClean(t *testing.T) {
	for _, p := range []string{"/", "//", "/a", "/a/", "/a//b", "/a/./b", "/a/../b", "/.bashrc", "/a/.hidden/x", "/a/b.", "/a/..",
		"a/b", "./a", "../a", ".", "", "/tmp/palisade-gen-1", "/var/log/app/access.log", "/a/b/c/", "/..", "/./", "/a/b/.", "/a.b/c..d"} {
		if got, want := cleanPath([]byte(p)), path.Clean(p); got != want {
			t.Errorf("cleanPath(%q) = %q, path.Clean gives %q", p, got, want)
		}
	}
}
