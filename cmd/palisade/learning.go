package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-dev/palisade/learning"
	"github.com/palisade-dev/palisade/learning/forge"
	"github.com/palisade-dev/palisade/learning/pr"
	"github.com/palisade-dev/palisade/learning/service"
	"github.com/palisade-dev/palisade/reconciler/gogit"
)

// learningFlags turn on learning in the controller: the endpoint sensors
// send observations to, the persisted profiles, and proposals as pull
// requests through a forge.
type learningFlags struct {
	dir            string // profile store; empty: learning off
	tokenFile      string // admins' token for propose/status
	sensorToken    string // static token sensors present (instead of TokenReview)
	sensorAccounts string // ServiceAccounts (ns/name,...) whose tokens TokenReview accepts
	audience       string // audience the sensors' tokens must be issued for
	kubeconfig     string
	quiet, every   time.Duration
	nextMode       string
	forge          forge.Options
	authorEmail    string
}

func (f *learningFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "learning-dir", "", "directory of the learning profiles (a persistent volume); empty turns learning off")
	fl.StringVar(&f.tokenFile, "learning-token-file", "", "file holding the token of the learning API for admins (palisade learn)")
	fl.StringVar(&f.sensorToken, "learning-sensor-token-file", "", "file holding a static token sensors present; without it sensors' ServiceAccount tokens are checked with TokenReview")
	fl.StringVar(&f.sensorAccounts, "learning-sensor-accounts", "palisade-system/palisade-sensor", "ServiceAccounts (namespace/name, comma-separated) whose tokens may send observations")
	fl.StringVar(&f.audience, "learning-audience", "", "audience sensors' projected tokens must be issued for (e.g. palisade-controller), so that a token the controller sees is good for nothing else; empty: the API server's default audience")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for TokenReview (default: in-cluster, then $KUBECONFIG)")
	fl.DurationVar(&f.quiet, "learning-quiet", service.DefaultQuiet, "a profile with no new behaviour for this long is stable and proposed")
	fl.DurationVar(&f.every, "learning-check-every", time.Hour, "how often stable profiles are proposed; 0: only on demand (palisade learn propose)")
	fl.StringVar(&f.nextMode, "learning-next-mode", "audit", "the mode a proposal sets on its ruleset (audit, or enforce to skip the audit step)")
	fl.StringVar(&f.forge.Kind, "forge", "", "forge of the policy repository for pull requests: gitea, github or gitlab")
	fl.StringVar(&f.forge.URL, "forge-url", "", "forge API base URL (github: empty for github.com)")
	fl.StringVar(&f.forge.Repo, "forge-repo", "", "repository on the forge: owner/name (GitLab: the project path)")
	fl.StringVar(&f.forge.TokenFile, "forge-token-file", "", "file holding the forge API token")
	fl.StringVar(&f.forge.CAFile, "forge-ca-file", "", "CA (PEM) of the forge's certificate")
	fl.StringVar(&f.authorEmail, "learning-author-email", "", "e-mail of the commits of proposals (default learning@palisade.invalid)")
}

// learningSetup is learning wired into the controller.
type learningSetup struct {
	store   *learning.Store
	service *service.Service
	batches http.Handler // sensors: observations and profile status
	api     http.Handler // admins: propose and ruleset status
}

// newLearning wires learning when --learning-dir is set (nil otherwise).
func newLearning(f learningFlags, git gogit.Options, log *slog.Logger, reg prometheus.Registerer) (*learningSetup, error) {
	if f.dir == "" {
		return nil, nil
	}
	if f.tokenFile == "" {
		return nil, errors.New("--learning-token-file is required with --learning-dir: proposals act on the policy repository")
	}
	if f.forge.Kind == "" {
		return nil, errors.New("--forge is required with --learning-dir: proposals are pull requests")
	}
	if !strings.HasPrefix(git.URL, "https://") && !strings.HasPrefix(git.URL, "http://") && !strings.HasPrefix(git.URL, "file://") {
		return nil, fmt.Errorf("--repo %s: learning pushes proposals over HTTPS; SSH is not supported for pushing yet", git.URL)
	}
	fg, err := forge.New(f.forge)
	if err != nil {
		return nil, err
	}
	pub, err := pr.New(pr.Options{
		URL: git.URL, Username: git.Username, PasswordFile: git.PasswordFile, CAFile: git.CAFile,
		AuthorEmail: f.authorEmail, Forge: fg,
	})
	if err != nil {
		return nil, err
	}
	var sensors learning.Authenticator
	if f.sensorToken != "" {
		sensors = &learning.TokenFileAuth{Path: f.sensorToken, Subject: "sensor"}
	} else {
		cfg, err := loadRESTConfig(f.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("learning: sensors authenticate with TokenReview: %w", err)
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		var users []string
		for _, a := range strings.Split(f.sensorAccounts, ",") {
			ns, name, ok := strings.Cut(strings.TrimSpace(a), "/")
			if !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("--learning-sensor-accounts: %q is not namespace/name", a)
			}
			users = append(users, "system:serviceaccount:"+ns+":"+name)
		}
		ropts := learning.TokenReviewOptions{AllowedUsers: users}
		if f.audience != "" {
			ropts.Audiences = []string{f.audience}
		}
		sensors = learning.NewTokenReviewAuth(kube, ropts)
	}
	store, err := learning.OpenStore(f.dir, learning.StoreLog(log))
	if err != nil {
		return nil, err
	}
	svc, err := service.New(service.Options{
		Store: store, Publisher: pub, Base: branchOf(git), PolicyDir: git.Dir,
		NextMode: f.nextMode, Quiet: f.quiet, Every: f.every, Logger: log,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &learningSetup{
		store: store, service: svc,
		batches: learning.NewHandler(store, sensors, log, learning.HandlerRegisterer(reg)),
		api:     svc.Handler(&learning.TokenFileAuth{Path: f.tokenFile, Subject: "admin"}),
	}, nil
}

// mount serves learning's endpoints on mux.
func (l *learningSetup) mount(mux *http.ServeMux) {
	mux.Handle(learning.BatchesPath, l.batches)
	mux.Handle(learning.StatusPath, l.batches)
	mux.Handle("/learning/v1/propose", l.api)
	mux.Handle("/learning/v1/rulesets", l.api)
	mux.Handle("/learning/v1/profiles/", l.api)
}

func (l *learningSetup) run(ctx context.Context) error { return l.service.Run(ctx) }

func (l *learningSetup) close() error { return l.store.Close() }

// branchOf is the branch the controller follows, which proposals target.
func branchOf(git gogit.Options) string {
	if git.Branch != "" {
		return git.Branch
	}
	return "main"
}
