package scanner

import (
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// cronParser accepts what policy validation accepts: five fields and
// descriptors, @every included.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// scheduler keeps one cron entry per distinct schedule of the active
// bundle. A firing entry only marks its schedule due and wakes the scan
// loop: the scans themselves run one at a time in Run's goroutine, so
// schedules that fire during a scan are coalesced into the next one.
type scheduler struct {
	log  *slog.Logger
	cron *cron.Cron
	wake chan struct{} // capacity 1: a pending wake-up

	mu        sync.Mutex
	built     bool                    // update ran once
	schedules bundles.Schedules       // what the entries were built from
	entries   map[string]cron.EntryID // by schedule
	invalid   map[string]bool         // schedules that do not parse: the default applies
	due       map[string]bool         // schedules that fired since the last take
}

func newScheduler(log *slog.Logger) *scheduler {
	return &scheduler{
		log: log,
		// UTC, whatever the container's zone: a schedule reads the same on
		// every node. A schedule may name its own zone (CRON_TZ=...).
		cron:    cron.New(cron.WithParser(cronParser), cron.WithLocation(time.UTC), cron.WithLogger(cron.DiscardLogger)),
		wake:    make(chan struct{}, 1),
		entries: map[string]cron.EntryID{},
		invalid: map[string]bool{},
		due:     map[string]bool{},
	}
}

func (s *scheduler) start() { s.cron.Start() }
func (s *scheduler) stop()  { s.cron.Stop() }

// update makes the entries those of sched: entries of schedules that stay
// keep their timing, others are removed or added. It reports whether
// anything changed.
func (s *scheduler) update(sched bundles.Schedules) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built && sameSchedules(s.schedules, sched) {
		return false
	}
	s.built = true
	s.schedules = bundles.Schedules{ClusterWide: sched.ClusterWide, Namespaces: maps.Clone(sched.Namespaces)}
	want := map[string]bool{}
	s.invalid = map[string]bool{}
	for _, spec := range distinct(sched) {
		if _, err := cronParser.Parse(spec); err != nil {
			// Validation refuses such a policy; if one gets here anyway, its
			// namespaces are scanned on the default schedule.
			s.log.Error("invalid schedule, using the default", keySchedule, spec, keyError, err.Error())
			s.invalid[spec] = true
			want[policy.DefaultSchedule] = true
			continue
		}
		want[spec] = true
	}
	for spec, id := range s.entries {
		if !want[spec] {
			s.cron.Remove(id)
			delete(s.entries, spec)
			delete(s.due, spec)
		}
	}
	for spec := range want {
		if _, ok := s.entries[spec]; ok {
			continue
		}
		id, err := s.cron.AddFunc(spec, func() { s.fire(spec) })
		if err != nil { // parsed above; cannot happen
			s.log.Error("schedule not added", keySchedule, spec, keyError, err.Error())
			continue
		}
		s.entries[spec] = id
	}
	return true
}

// fire marks a schedule due and wakes the scan loop.
func (s *scheduler) fire(spec string) {
	s.mu.Lock()
	s.due[spec] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// take returns the due schedules and forgets them.
func (s *scheduler) take() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	due := s.due
	s.due = map[string]bool{}
	return due
}

// scheduleOf returns the entry that scans a namespace: its schedule, or
// the default for a schedule that does not parse.
func (s *scheduler) scheduleOf(namespace string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	spec := s.schedules.For(namespace)
	if s.invalid[spec] {
		return policy.DefaultSchedule
	}
	return spec
}

// specs returns the schedules that have entries, for tests and logs.
func (s *scheduler) specs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.entries))
	for spec := range s.entries {
		out = append(out, spec)
	}
	return out
}

// distinct returns the schedules in use: the cluster-wide one (for the
// namespaces no namespaced definition lists) and the namespaced ones.
func distinct(sched bundles.Schedules) []string {
	seen := map[string]bool{}
	var out []string
	add := func(spec string) {
		if !seen[spec] {
			seen[spec] = true
			out = append(out, spec)
		}
	}
	add(clusterWide(sched))
	for _, spec := range sched.Namespaces {
		add(spec)
	}
	return out
}

func sameSchedules(a, b bundles.Schedules) bool {
	return clusterWide(a) == clusterWide(b) && maps.Equal(a.Namespaces, b.Namespaces)
}

// clusterWide is the schedule of the namespaces no namespaced definition
// lists.
func clusterWide(s bundles.Schedules) string {
	if s.ClusterWide == "" {
		return policy.DefaultSchedule
	}
	return s.ClusterWide
}
