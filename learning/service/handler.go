package service

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Authenticator authenticates a request (learning.Authenticator).
type Authenticator interface {
	Authenticate(r *http.Request) (string, error)
}

// Handler serves the learning API of the controller:
//
//	POST /learning/v1/propose?ruleset=NAME  propose now (palisade learn propose)
//	GET  /learning/v1/rulesets              per-ruleset status (palisade learn status)
//	GET  /learning/v1/profiles/{ruleset}     a ruleset's behaviour profile (evidence)
//
// Both need an authenticated caller: they act on the policy repository
// and show which workloads run what.
func (s *Service) Handler(auth Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /learning/v1/propose", func(w http.ResponseWriter, r *http.Request) {
		who, ok := s.authenticate(w, r, auth)
		if !ok {
			return
		}
		ruleset := r.URL.Query().Get("ruleset")
		if ruleset == "" {
			writeError(w, http.StatusBadRequest, "the ruleset query parameter is required")
			return
		}
		out, err := s.Propose(r.Context(), ruleset)
		switch {
		case errors.Is(err, ErrUnknownRuleset):
			writeError(w, http.StatusNotFound, err.Error())
			return
		case errors.Is(err, ErrNotLearning), errors.Is(err, ErrNothingLearned):
			writeError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			s.log.Error("propose", "ruleset", ruleset, "by", who, "error", err)
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		s.log.Info("proposal requested", "ruleset", ruleset, "by", who)
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /learning/v1/rulesets", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r, auth); !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /learning/v1/profiles/{ruleset}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r, auth); !ok {
			return
		}
		p, ok := s.opts.Store.Profile(r.PathValue("ruleset"))
		if !ok {
			writeError(w, http.StatusNotFound, "no profile for ruleset "+r.PathValue("ruleset"))
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	return mux
}

func (s *Service) authenticate(w http.ResponseWriter, r *http.Request, auth Authenticator) (string, bool) {
	who, err := auth.Authenticate(r)
	if err != nil {
		s.log.Warn("learning API: unauthenticated request", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusUnauthorized, "unauthenticated")
		return "", false
	}
	return who, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
