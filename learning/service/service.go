// Package service is learning's controller side: it knows the published
// policy (which rulesets are learning, and in which file each is
// defined), turns a ruleset's behaviour profile into a proposal, and
// publishes it as a pull request, on demand or when the profile has been
// stable for the quiet period.
//
// Decisions:
//   - A proposal writes learned/<ruleset>.yaml and, in the same commit,
//     sets the ruleset's mode to NextMode (audit by default) in the file
//     that defines it: enforcement begins only after a second, human
//     change to enforce.
//   - Only rulesets in mode learning are proposed; a ruleset whose
//     proposal was merged is in audit, so it is not proposed again.
//   - Automatic proposals run on a schedule (Every) and only for stable
//     profiles (no new behaviour for Quiet, 24h by default: the way
//     NeuVector promotes Discover to Monitor). The publisher is
//     idempotent, so a check that finds nothing new changes nothing.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/palisade-dev/palisade/learning"
	"github.com/palisade-dev/palisade/learning/pr"
	"github.com/palisade-dev/palisade/policy"
)

// DefaultQuiet is how long a profile must see nothing new to be stable.
const DefaultQuiet = 24 * time.Hour

// Publisher publishes a change as a pull request (learning/pr).
type Publisher interface {
	Publish(ctx context.Context, c pr.Change) (*pr.Result, error)
}

// Options configures a Service.
type Options struct {
	Store     *learning.Store
	Publisher Publisher
	// Base is the branch proposals target (the followed branch).
	Base string
	// PolicyDir is the repository subdirectory that holds the policy.
	PolicyDir string
	// NextMode is the mode a proposal sets (default audit).
	NextMode string
	// Quiet is the stability period (DefaultQuiet if zero); Every is how
	// often Run looks for stable profiles (zero: never, on demand only).
	Quiet, Every time.Duration
	Generalise   learning.GeneraliseOptions
	Logger       *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Service proposes learned rules.
type Service struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	commit   string
	rulesets map[string]rulesetInfo
	last     map[string]*Outcome // last proposal per ruleset
	propose  sync.Mutex          // one proposal at a time
}

type rulesetInfo struct {
	mode, file string
	spec       *policy.RuntimeRuleset
}

// Outcome is what the last proposal of a ruleset did.
type Outcome struct {
	Action string    `json:"action"` // created, updated, unchanged, declined
	Number int       `json:"number,omitempty"`
	URL    string    `json:"url,omitempty"`
	Rules  int       `json:"rules"`
	At     time.Time `json:"at"`
}

// New returns a Service; SetPolicy must be called before proposals work.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Publisher == nil {
		return nil, errors.New("learning service: a store and a publisher are required")
	}
	o.Base = cmp.Or(o.Base, "main")
	o.NextMode = cmp.Or(o.NextMode, policy.ModeAudit)
	o.Quiet = cmp.Or(o.Quiet, DefaultQuiet)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: o, log: log, rulesets: map[string]rulesetInfo{}, last: map[string]*Outcome{}}, nil
}

// SetPolicy records the published policy: the reconciler's OnPolicy.
func (s *Service) SetPolicy(commit string, repo *policy.Repo) {
	m := make(map[string]rulesetInfo, len(repo.Rulesets))
	for name, rs := range repo.Rulesets {
		m[name] = rulesetInfo{mode: rs.Spec.Mode, file: rs.Source.File, spec: rs}
	}
	s.mu.Lock()
	s.commit, s.rulesets = commit, m
	s.mu.Unlock()
}

// ErrNotLearning is returned for a ruleset that is not in learning mode.
var ErrNotLearning = errors.New("not in learning mode")

// ErrUnknownRuleset is returned for a ruleset the published policy lacks.
var ErrUnknownRuleset = errors.New("no such ruleset in the published policy")

// ErrNothingLearned is returned when a ruleset's profile is empty.
var ErrNothingLearned = errors.New("no behaviour observed yet")

// Propose publishes the learned rules of a ruleset as a pull request.
func (s *Service) Propose(ctx context.Context, ruleset string) (*Outcome, error) {
	return s.proposeWhy(ctx, ruleset, "requested with palisade learn propose")
}

func (s *Service) proposeWhy(ctx context.Context, ruleset, why string) (*Outcome, error) {
	s.propose.Lock()
	defer s.propose.Unlock()
	s.mu.Lock()
	info, ok := s.rulesets[ruleset]
	s.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("ruleset %q: %w", ruleset, ErrUnknownRuleset)
	case info.mode != policy.ModeLearning:
		return nil, fmt.Errorf("ruleset %q is in mode %s: %w", ruleset, info.mode, ErrNotLearning)
	}
	prof, ok := s.opts.Store.Profile(ruleset)
	if !ok || len(prof.Workloads) == 0 {
		return nil, fmt.Errorf("ruleset %q: %w", ruleset, ErrNothingLearned)
	}
	// Learned rules only for the sections the ruleset has: the policy
	// refuses learned rules for a section it lacks.
	gopts := s.opts.Generalise
	gopts.Sections = []string{}
	if info.spec.Spec.Process != nil {
		gopts.Sections = append(gopts.Sections, learning.KindProcess)
	}
	if info.spec.Spec.File != nil {
		gopts.Sections = append(gopts.Sections, learning.KindFile)
	}
	prop := learning.Generalise(prof, gopts)
	learned, err := learning.RenderLearned(prop)
	if err != nil {
		return nil, fmt.Errorf("ruleset %q: render learned rules: %w", ruleset, err)
	}
	rulesetFile := path.Join(s.opts.PolicyDir, info.file)
	learnedFile := path.Join(s.opts.PolicyDir, "learned", ruleset+".yaml")
	res, err := s.opts.Publisher.Publish(ctx, pr.Change{
		Ruleset: ruleset,
		Base:    s.opts.Base,
		Branch:  pr.BranchName(ruleset),
		Title:   learning.Title(prop),
		Body: learning.RenderBody(prop, learning.BodyOptions{
			FromMode: policy.ModeLearning, NextMode: s.opts.NextMode,
			LearnedFile: learnedFile, RulesetFile: rulesetFile, Ruleset: info.spec, Why: why,
		}),
		Files: func(read func(string) ([]byte, error)) (map[string][]byte, error) {
			src, err := read(rulesetFile)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", rulesetFile, err)
			}
			edited, err := learning.SetMode(src, ruleset, s.opts.NextMode)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rulesetFile, err)
			}
			return map[string][]byte{learnedFile: learned, rulesetFile: edited}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ruleset %q: publish: %w", ruleset, err)
	}
	out := &Outcome{Action: string(res.Action), Number: res.Number, URL: res.URL, Rules: prop.RuleCount(), At: s.opts.Now()}
	s.mu.Lock()
	s.last[ruleset] = out
	s.mu.Unlock()
	s.log.Info("learned rules proposed", "ruleset", ruleset, "action", out.Action, "pr", out.URL, "rules", out.Rules)
	return out, nil
}

// RulesetStatus is `palisade learn status` for one ruleset.
type RulesetStatus struct {
	Ruleset string `json:"ruleset"`
	Mode    string `json:"mode"`
	// Workloads observed, behaviours in the profile, and when new
	// behaviour last arrived.
	Workloads  int        `json:"workloads"`
	Behaviours int        `json:"behaviours"`
	LastNew    *time.Time `json:"lastNew,omitempty"`
	Stable     bool       `json:"stable"`
	Proposal   *Outcome   `json:"proposal,omitempty"`
}

// Status lists every ruleset of the published policy and every ruleset
// with a profile, sorted by name.
func (s *Service) Status() []RulesetStatus {
	s.mu.Lock()
	names := map[string]string{}
	for n, info := range s.rulesets {
		names[n] = info.mode
	}
	last := map[string]*Outcome{}
	for n, o := range s.last {
		c := *o
		last[n] = &c
	}
	s.mu.Unlock()
	for _, n := range s.opts.Store.Rulesets() {
		if _, ok := names[n]; !ok {
			names[n] = "" // profile of a ruleset no longer published
		}
	}
	now := s.opts.Now()
	out := make([]RulesetStatus, 0, len(names))
	for n, mode := range names {
		st := RulesetStatus{Ruleset: n, Mode: mode, Proposal: last[n]}
		if p, ok := s.opts.Store.Profile(n); ok {
			st.Workloads = len(p.Workloads)
			for _, w := range p.Workloads {
				st.Behaviours += len(w.Behaviour)
			}
			if !p.LastNew.IsZero() {
				t := p.LastNew
				st.LastNew = &t
			}
			st.Stable = learning.Stable(p, now, s.opts.Quiet)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RulesetStatus) int { return cmp.Compare(a.Ruleset, b.Ruleset) })
	return out
}

// Run proposes stable profiles every Every until ctx ends; with Every
// zero it only waits.
func (s *Service) Run(ctx context.Context) error {
	if s.opts.Every <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.proposeStable(ctx)
		}
	}
}

func (s *Service) proposeStable(ctx context.Context) {
	for _, st := range s.Status() {
		if st.Mode != policy.ModeLearning || !st.Stable {
			continue
		}
		why := fmt.Sprintf("no new behaviour for %s", s.opts.Quiet)
		if _, err := s.proposeWhy(ctx, st.Ruleset, why); err != nil {
			s.log.Error("learned rules not proposed", "ruleset", st.Ruleset, "error", err)
		}
	}
}
