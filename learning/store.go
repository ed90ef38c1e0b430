package learning

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/internal/atomicfile"
)

// Files of a Store's directory.
const (
	storeSnapshotFile = "snapshot.json"
	storeJournalFile  = "journal.jsonl"
)

// Bounds of a Store's applied-id memory and journal.
const (
	// storeMaxAbove bounds the sequence numbers a stream remembers above
	// its contiguous watermark. A gap wider than this is a batch the
	// sender gave up on (its queue holds far fewer, DefaultQueueSize), so
	// the watermark moves past it; such a batch, were it to arrive
	// after all, would be taken for applied.
	storeMaxAbove = 1024
	// storeMaxBootsPerNode bounds the sensor runs remembered per node. A
	// run's batches stop when it exits; only the last few can still be
	// in flight.
	storeMaxBootsPerNode = 8
	// storeSnapshotRecords and storeSnapshotBytes say when the journal
	// is folded into a new snapshot: often enough that opening replays
	// little, rarely enough that rewriting every profile is amortised.
	storeSnapshotRecords = 512
	storeSnapshotBytes   = 32 << 20
)

// Store holds the controller's behaviour profiles, merged from sensors'
// batches, each batch applied once.
//
// Where profiles live, and why: in a directory of the controller's
// PersistentVolume (the controller is a single replica). Not in etcd
// (ConfigMaps or a CRD's status): an object is limited to 1 MiB, which a
// profile of a busy ruleset outgrows, and every batch, every few seconds
// from every node, would write a new etcd revision of the whole object —
// the reason PolicyReports are bounded too.
//
// Format: snapshot.json holds every profile and the applied-id memory as
// of a journal record number; journal.jsonl appends one line per applied
// batch ("<crc32 hex> <json>\n": the receive time, a record number and
// the batch), fsynced before Apply returns, so an acknowledgement means
// the batch is on disk. Each line costs one append, however large the
// profiles are. Every 512 batches (or 32 MiB of journal) the snapshot is rewritten (temporary file, fsync, rename,
// fsync of the directory) and the journal truncated. Opening replays the
// journal records newer than the snapshot; a torn last line (a crash in
// the middle of an append, never acknowledged) is cut off, a damaged line
// followed by good ones is an error, not silently skipped.
//
// Merging: counts add up, first seen is the earliest, last seen the
// latest, sample pods are the MaxSamplePods lexicographically first names
// (so the result does not depend on the order batches arrive in), and
// Behaviour stays sorted. Profile.LastNew is the receive time (the
// controller's clock, recorded in the journal) of the last batch that
// brought a key new to its workload, so that nodes' clock skew cannot
// make a profile look stable.
//
// Idempotence: batch ids are "<node>/<boot>/<seq>". Per (node, boot) the
// store keeps the highest seq below which every batch was applied plus the
// applied seqs above it (at most 1024: a wider gap is a batch the sender
// dropped), and per node the last 8 boots: memory is bounded by nodes,
// not by batches. A batch of a forgotten boot would be applied again, but
// a boot is forgotten only after eight newer runs of its node's sensor.
type Store struct {
	dir string
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	profiles  map[string]*Profile
	streams   map[string]*storeStream // by node + "/" + boot
	journal   *os.File
	size      int64  // journal bytes
	records   int    // journal records since the snapshot
	recordSeq uint64 // last record number
	broken    error  // a journal write that could not be undone
}

// StoreOption configures OpenStore.
type StoreOption func(*Store)

// StoreLog sets the logger of a Store (default slog.Default()).
func StoreLog(log *slog.Logger) StoreOption { return func(s *Store) { s.log = log } }

// storeStream is the applied-id memory of one sensor run.
type storeStream struct {
	Node   string    `json:"node"`
	Boot   string    `json:"boot"`
	Contig uint64    `json:"contig"`          // every seq ≤ Contig was applied
	Above  []uint64  `json:"above,omitempty"` // applied seqs > Contig+1, sorted
	Last   time.Time `json:"last"`            // receive time of its last batch
}

type storeSnapshot struct {
	Version   int                 `json:"version"`
	RecordSeq uint64              `json:"recordSeq"` // journal records up to this are included
	Profiles  map[string]*Profile `json:"profiles"`
	Applied   []*storeStream      `json:"applied"`
}

type storeRecord struct {
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	Batch *Batch    `json:"batch"`
}

// OpenStore opens (creating it if needed) the store in dir, replaying its
// journal.
func OpenStore(dir string, opts ...StoreOption) (*Store, error) {
	s := &Store{
		dir:      dir,
		log:      slog.Default(),
		now:      time.Now,
		profiles: map[string]*Profile{},
		streams:  map[string]*storeStream{},
	}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open learning store: %w", err)
	}
	// Temporary files of a snapshot write a crash interrupted.
	atomicfile.RemoveLeftovers(dir, storeSnapshotFile)
	if err := s.readSnapshot(); err != nil {
		return nil, err
	}
	if err := s.replayJournal(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) readSnapshot() error {
	data, err := os.ReadFile(filepath.Join(s.dir, storeSnapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read learning snapshot: %w", err)
	}
	var snap storeSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("read learning snapshot %s: %w", filepath.Join(s.dir, storeSnapshotFile), err)
	}
	if snap.Profiles != nil {
		s.profiles = snap.Profiles
	}
	for _, st := range snap.Applied {
		s.streams[st.Node+"/"+st.Boot] = st
	}
	s.recordSeq = snap.RecordSeq
	return nil
}

func (s *Store) replayJournal() error {
	path := filepath.Join(s.dir, storeJournalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open learning journal: %w", err)
	}
	var (
		good    int64 // end of the last good record
		offset  int64
		badLine int
	)
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		data, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return fmt.Errorf("read learning journal: %w", err)
		}
		if len(data) == 0 {
			break
		}
		offset += int64(len(data))
		rec, ok := decodeStoreRecord(data)
		if !ok {
			if badLine == 0 {
				badLine = line
			}
			continue
		}
		if badLine != 0 {
			f.Close()
			return fmt.Errorf("learning journal %s: line %d damaged, followed by good records", path, badLine)
		}
		good = offset
		if rec.Seq <= s.recordSeq {
			continue // in the snapshot already
		}
		s.applyLocked(rec)
		s.records++
	}
	if good < offset {
		s.log.Warn("learning journal: torn tail cut off", "bytes", offset-good)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("truncate learning journal: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek learning journal: %w", err)
	}
	s.journal, s.size = f, good
	return nil
}

func decodeStoreRecord(line []byte) (storeRecord, bool) {
	var rec storeRecord
	if len(line) < 10 || line[8] != ' ' || line[len(line)-1] != '\n' {
		return rec, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	body := line[9 : len(line)-1]
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(body) {
		return rec, false
	}
	if json.Unmarshal(body, &rec) != nil || rec.Batch == nil {
		return rec, false
	}
	return rec, true
}

// Close closes the journal. The store is not usable afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	s.broken = errors.New("learning store closed")
	return err
}

// Apply merges b's observations into the profiles of their rulesets
// unless a batch with b's id was applied before, and returns whether it
// applied b. When it returns a nil error, b (or its earlier copy) is on
// disk. It returns an error wrapping ErrInvalidBatch for a batch that
// fails validation.
func (s *Store) Apply(b *Batch) (applied bool, err error) {
	if err := validateBatch(b); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return false, s.broken
	}
	if s.isApplied(b.ID) {
		return false, nil
	}
	rec := storeRecord{Seq: s.recordSeq + 1, At: s.now().UTC().Round(0), Batch: b}
	body, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode learning batch %s: %w", b.ID, err)
	}
	line := make([]byte, 0, len(body)+10)
	line = fmt.Appendf(line, "%08x ", crc32.ChecksumIEEE(body))
	line = append(line, body...)
	line = append(line, '\n')
	if err := s.appendJournal(line); err != nil {
		return false, err
	}
	s.applyLocked(rec)
	s.records++
	if s.records >= storeSnapshotRecords || s.size >= storeSnapshotBytes {
		if err := s.snapshotLocked(); err != nil {
			// The batch is in the journal; the next Apply tries again.
			s.log.Error("learning snapshot failed", "error", err.Error())
		}
	}
	return true, nil
}

// appendJournal writes line at the journal's end and syncs it; on failure
// it cuts the journal back, so that no half line precedes later records.
func (s *Store) appendJournal(line []byte) error {
	_, err := s.journal.Write(line)
	if err == nil {
		err = s.journal.Sync()
	}
	if err == nil {
		s.size += int64(len(line))
		return nil
	}
	err = fmt.Errorf("append learning journal: %w", err)
	if terr := s.journal.Truncate(s.size); terr != nil {
		s.broken = fmt.Errorf("%w (and truncating it back failed: %v)", err, terr)
		return s.broken
	}
	if _, serr := s.journal.Seek(s.size, io.SeekStart); serr != nil {
		s.broken = fmt.Errorf("%w (and seeking back failed: %v)", err, serr)
		return s.broken
	}
	return err
}

// snapshotLocked writes every profile and the applied-id memory to a new
// snapshot, then empties the journal.
func (s *Store) snapshotLocked() error {
	snap := storeSnapshot{Version: 1, RecordSeq: s.recordSeq, Profiles: s.profiles}
	for _, st := range s.streams {
		snap.Applied = append(snap.Applied, st)
	}
	slices.SortFunc(snap.Applied, func(x, y *storeStream) int {
		if c := cmp.Compare(x.Node, y.Node); c != 0 {
			return c
		}
		return cmp.Compare(x.Boot, y.Boot)
	})
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode learning snapshot: %w", err)
	}
	if err := atomicfile.Write(s.dir, storeSnapshotFile, data); err != nil {
		return err
	}
	// A crash here leaves records the snapshot holds in the journal;
	// opening skips them by record number.
	if err := s.journal.Truncate(0); err != nil {
		return fmt.Errorf("truncate learning journal: %w", err)
	}
	if _, err := s.journal.Seek(0, io.SeekStart); err != nil {
		s.broken = fmt.Errorf("seek learning journal: %w", err)
		return s.broken
	}
	s.size, s.records = 0, 0
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("sync learning journal: %w", err)
	}
	return nil
}

// isApplied reports whether the batch with this (valid) id was applied.
func (s *Store) isApplied(id string) bool {
	node, boot, seq, _ := parseBatchID(id)
	st := s.streams[node+"/"+boot]
	if st == nil {
		return false
	}
	if seq <= st.Contig {
		return true
	}
	_, found := slices.BinarySearch(st.Above, seq)
	return found
}

// applyLocked merges a journal record into memory (its batch not applied
// before).
func (s *Store) applyLocked(rec storeRecord) {
	s.recordSeq = rec.Seq
	node, boot, seq, _ := parseBatchID(rec.Batch.ID)
	if s.isApplied(rec.Batch.ID) {
		return
	}
	s.markApplied(node, boot, seq, rec.At)
	for _, o := range rec.Batch.Observations {
		p := s.profiles[o.Ruleset]
		if p == nil {
			p = &Profile{Ruleset: o.Ruleset, Workloads: map[string]*WorkloadProfile{}}
			s.profiles[o.Ruleset] = p
		}
		if mergeObservedInto(p, o) {
			p.LastNew = rec.At
		}
	}
}

func (s *Store) markApplied(node, boot string, seq uint64, at time.Time) {
	key := node + "/" + boot
	st := s.streams[key]
	if st == nil {
		st = &storeStream{Node: node, Boot: boot}
		s.streams[key] = st
		s.evictBoots(node, st)
	}
	st.Last = at
	i, _ := slices.BinarySearch(st.Above, seq)
	st.Above = slices.Insert(st.Above, i, seq)
	if len(st.Above) > storeMaxAbove {
		// The batches missing below the lowest are not coming.
		st.Contig = st.Above[0]
		st.Above = st.Above[1:]
	}
	for len(st.Above) > 0 && st.Above[0] <= st.Contig+1 {
		st.Contig = max(st.Contig, st.Above[0])
		st.Above = st.Above[1:]
	}
	if len(st.Above) == 0 {
		st.Above = nil
	}
}

// evictBoots forgets the least recent runs of node beyond
// storeMaxBootsPerNode, never keep.
func (s *Store) evictBoots(node string, keep *storeStream) {
	var runs []*storeStream
	for _, st := range s.streams {
		if st.Node == node && st != keep {
			runs = append(runs, st)
		}
	}
	if len(runs) < storeMaxBootsPerNode {
		return
	}
	slices.SortFunc(runs, func(x, y *storeStream) int {
		if c := x.Last.Compare(y.Last); c != 0 {
			return c
		}
		return cmp.Compare(x.Boot, y.Boot)
	})
	for _, st := range runs[:len(runs)-storeMaxBootsPerNode+1] {
		delete(s.streams, st.Node+"/"+st.Boot)
	}
}

// mergeObservedInto adds o to p and reports whether its key was new for
// its workload.
func mergeObservedInto(p *Profile, o Observed) bool {
	wk := WorkloadKey(o.Workload)
	w := p.Workloads[wk]
	if w == nil {
		w = &WorkloadProfile{}
		p.Workloads[wk] = w
	}
	// The latest batch's image and digest: a new image version keeps the
	// workload's profile and shows which version was seen last.
	w.ID = o.Workload
	ev := o.Evidence
	ev.FirstSeen, ev.LastSeen = ev.FirstSeen.UTC().Round(0), ev.LastSeen.UTC().Round(0)
	i, found := slices.BinarySearchFunc(w.Behaviour, o.Key, func(b Behaviour, k Key) int {
		return transportKeyOrder(b.Key, k)
	})
	if !found {
		pods := make([]string, 0, MaxSamplePods)
		for _, pod := range ev.Pods {
			pods = addSamplePod(pods, pod)
		}
		ev.Pods = pods
		if len(ev.Pods) == 0 {
			ev.Pods = nil
		}
		w.Behaviour = slices.Insert(w.Behaviour, i, Behaviour{Key: o.Key, Evidence: ev})
		return true
	}
	cur := &w.Behaviour[i].Evidence
	if cur.Count+ev.Count < cur.Count {
		cur.Count = ^uint64(0)
	} else {
		cur.Count += ev.Count
	}
	if ev.FirstSeen.Before(cur.FirstSeen) {
		cur.FirstSeen = ev.FirstSeen
	}
	if ev.LastSeen.After(cur.LastSeen) {
		cur.LastSeen = ev.LastSeen
	}
	for _, pod := range ev.Pods {
		cur.Pods = addSamplePod(cur.Pods, pod)
	}
	return false
}

// Profile returns a copy of ruleset's profile.
func (s *Store) Profile(ruleset string) (*Profile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[ruleset]
	if p == nil {
		return nil, false
	}
	return copyProfile(p), true
}

func copyProfile(p *Profile) *Profile {
	c := &Profile{Ruleset: p.Ruleset, LastNew: p.LastNew, Workloads: make(map[string]*WorkloadProfile, len(p.Workloads))}
	for k, w := range p.Workloads {
		cw := &WorkloadProfile{ID: w.ID, Behaviour: slices.Clone(w.Behaviour)}
		for i := range cw.Behaviour {
			cw.Behaviour[i].Evidence.Pods = slices.Clone(cw.Behaviour[i].Evidence.Pods)
		}
		c.Workloads[k] = cw
	}
	return c
}

// Rulesets returns the rulesets that have a profile, sorted.
func (s *Store) Rulesets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.profiles))
	for name := range s.profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ProfileStatus summarises one ruleset's profile.
type ProfileStatus struct {
	Ruleset string `json:"ruleset"`
	// Workloads is how many workloads (namespace, workload, container)
	// were observed; Behaviours how many distinct behaviours in all.
	Workloads  int       `json:"workloads"`
	Behaviours int       `json:"behaviours"`
	LastNew    time.Time `json:"lastNew"`
}

// Status summarises every profile, sorted by ruleset.
func (s *Store) Status() []ProfileStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProfileStatus, 0, len(s.profiles))
	for name, p := range s.profiles {
		st := ProfileStatus{Ruleset: name, Workloads: len(p.Workloads), LastNew: p.LastNew}
		for _, w := range p.Workloads {
			st.Behaviours += len(w.Behaviour)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y ProfileStatus) int { return cmp.Compare(x.Ruleset, y.Ruleset) })
	return out
}
