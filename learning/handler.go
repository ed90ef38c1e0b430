package learning

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-dev/palisade/internal/metrics"
)

// Paths the controller serves.
const (
	BatchesPath = "/learning/v1/batches"
	StatusPath  = "/learning/v1/status"
)

// MaxBatchBytes bounds a batch's request body: DefaultMaxKeys
// observations of typical size fit with room to spare, and a larger body
// is answered 413 before it is read.
const MaxBatchBytes = 4 << 20

// ErrInvalidBatch is wrapped by the errors of a batch that fails
// validation (Store.Apply; the Handler answers 400).
var ErrInvalidBatch = errors.New("invalid learning batch")

// Bounds of a batch's strings: a Linux path is at most 4096 bytes, three
// times that once JSON has replaced its invalid UTF-8 bytes by U+FFFD.
const (
	maxBatchPath   = 3 * 4096
	maxBatchString = 512
)

var (
	// batchRulesetPattern accepts policy names (letters, digits, '_' and
	// '.') and '-'.
	batchRulesetPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,253}$`)
	batchOperations     = map[string][]string{
		KindProcess: {"exec", "fork"},
		KindFile:    {"createExecutable", "modifyExecutable", "createFile", "modifyFile", "deleteFile"},
	}
)

// parseBatchID splits "<node>/<boot>/<seq>", seq a decimal ≥ 1.
func parseBatchID(id string) (node, boot string, seq uint64, err error) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("%w: id %q is not <node>/<boot>/<seq>", ErrInvalidBatch, id)
	}
	seq, err = strconv.ParseUint(parts[2], 10, 64)
	if err != nil || seq == 0 {
		return "", "", 0, fmt.Errorf("%w: id %q: seq is not a positive decimal", ErrInvalidBatch, id)
	}
	return parts[0], parts[1], seq, nil
}

// validateBatch checks what the store relies on; its errors wrap
// ErrInvalidBatch and name the first offending observation.
func validateBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: no batch", ErrInvalidBatch)
	}
	if b.ID == "" {
		return fmt.Errorf("%w: id is empty", ErrInvalidBatch)
	}
	if len(b.ID) > maxBatchString {
		return fmt.Errorf("%w: id longer than %d bytes", ErrInvalidBatch, maxBatchString)
	}
	node, _, _, err := parseBatchID(b.ID)
	if err != nil {
		return err
	}
	if b.Node != node {
		return fmt.Errorf("%w: node %q differs from the id's %q", ErrInvalidBatch, b.Node, node)
	}
	for i := range b.Observations {
		if err := validateObserved(&b.Observations[i]); err != nil {
			return fmt.Errorf("%w: observations[%d]: %s", ErrInvalidBatch, i, err)
		}
	}
	return nil
}

func validateObserved(o *Observed) error {
	if !batchRulesetPattern.MatchString(o.Ruleset) {
		return fmt.Errorf("ruleset %q is not a ruleset name", o.Ruleset)
	}
	for _, f := range []struct{ name, value string }{
		{"workload.namespace", o.Workload.Namespace},
		{"workload.workload", o.Workload.Workload},
		{"workload.container", o.Workload.Container},
	} {
		if f.value == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"workload.namespace", o.Workload.Namespace},
		{"workload.workload", o.Workload.Workload},
		{"workload.container", o.Workload.Container},
		{"workload.image", o.Workload.Image},
		{"workload.digest", o.Workload.Digest},
		{"key.processName", o.Key.ProcessName},
	} {
		if len(f.value) > maxBatchString {
			return fmt.Errorf("%s longer than %d bytes", f.name, maxBatchString)
		}
	}
	ops, ok := batchOperations[o.Key.Kind]
	if !ok {
		return fmt.Errorf("key.kind %q is not %s or %s", o.Key.Kind, KindProcess, KindFile)
	}
	if !slices.Contains(ops, o.Key.Operation) {
		return fmt.Errorf("key.operation %q is not a %s operation (%s)", o.Key.Operation, o.Key.Kind, strings.Join(ops, ", "))
	}
	if o.Key.Path == "" || len(o.Key.Path) > maxBatchPath {
		return fmt.Errorf("key.path is empty or longer than %d bytes", maxBatchPath)
	}
	ev := &o.Evidence
	if ev.Count == 0 {
		return errors.New("evidence.count is 0")
	}
	if ev.FirstSeen.IsZero() || ev.LastSeen.IsZero() || ev.LastSeen.Before(ev.FirstSeen) {
		return errors.New("evidence.firstSeen and lastSeen must be set, firstSeen not after lastSeen")
	}
	if len(ev.Pods) > MaxSamplePods {
		return fmt.Errorf("evidence.pods has more than %d pods", MaxSamplePods)
	}
	for _, pod := range ev.Pods {
		if pod == "" || len(pod) > maxBatchString {
			return errors.New("evidence.pods has an empty or overlong name")
		}
	}
	return nil
}

// BatchResponse is the controller's answer to an applied (or already
// applied) batch.
type BatchResponse struct {
	ID string `json:"id"`
	// Applied is false when the batch had been applied before.
	Applied bool `json:"applied"`
}

// StatusResponse is the answer of GET StatusPath.
type StatusResponse struct {
	Rulesets []ProfileStatus `json:"rulesets"`
}

// Log keys of the handler.
const (
	transportLogBatch   = "batch"
	transportLogSubject = "subject"
	transportLogError   = "error"
)

type learningHandler struct {
	store     *Store
	auth      Authenticator
	log       *slog.Logger
	reg       prometheus.Registerer
	mReceived *prometheus.CounterVec
}

// Results of palisade_learning_batches_received_total.
const (
	receivedApplied   = "applied"
	receivedDuplicate = "duplicate"
	receivedInvalid   = "invalid"
	receivedDenied    = "denied"
	receivedError     = "error"
)

// HandlerOption configures NewHandler.
type HandlerOption func(*learningHandler)

// HandlerRegisterer registers the handler's metric,
// palisade_learning_batches_received_total by result (applied,
// duplicate, invalid, denied, error).
func HandlerRegisterer(reg prometheus.Registerer) HandlerOption {
	return func(h *learningHandler) { h.reg = reg }
}

// NewHandler serves the controller's learning endpoints, every request
// authenticated by auth:
//
//   - POST BatchesPath: a Batch as JSON, at most MaxBatchBytes (413
//     beyond). 200 with a BatchResponse once the batch is durable (or was
//     applied before); 400 for malformed JSON or an invalid batch (the
//     sender drops it, resending would not help); 401 without valid
//     credentials, 403 for a subject not allowed; 503 when authentication could not be checked; 500 when
//     the store failed (the sender retries).
//   - GET StatusPath: a StatusResponse.
func NewHandler(store *Store, auth Authenticator, log *slog.Logger, opts ...HandlerOption) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &learningHandler{store: store, auth: auth, log: log}
	for _, o := range opts {
		o(h)
	}
	h.mReceived = metrics.Register(h.reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricBatchesReceived,
		Help: "Learning batches received by the controller, by result (applied, duplicate, invalid, denied, error).",
	}, []string{labelResult}))
	mux := http.NewServeMux()
	mux.HandleFunc(BatchesPath, h.batches)
	mux.HandleFunc(StatusPath, h.status)
	return mux
}

func (h *learningHandler) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	subject, err := h.auth.Authenticate(r)
	if err == nil {
		return subject, true
	}
	if errors.Is(err, ErrUnauthenticated) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="palisade-learning"`)
		h.fail(w, http.StatusUnauthorized, "unauthenticated")
		return "", false
	}
	if errors.Is(err, ErrForbidden) {
		h.log.Warn("learning request forbidden", transportLogError, err.Error())
		h.fail(w, http.StatusForbidden, "forbidden")
		return "", false
	}
	h.log.Error("learning request not authenticated", transportLogError, err.Error())
	h.fail(w, http.StatusServiceUnavailable, "authentication unavailable")
	return "", false
}

func (h *learningHandler) batches(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	subject, ok := h.authenticate(w, r)
	if !ok {
		h.mReceived.WithLabelValues(receivedDenied).Inc()
		return
	}
	if r.ContentLength > MaxBatchBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch larger than %d bytes", MaxBatchBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxBatchBytes)
	var b Batch
	dec := json.NewDecoder(body)
	err := dec.Decode(&b)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("data after the batch object")
		}
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		h.mReceived.WithLabelValues(receivedInvalid).Inc()
		if errors.As(err, &tooLarge) {
			h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch larger than %d bytes", MaxBatchBytes))
			return
		}
		h.fail(w, http.StatusBadRequest, "malformed batch JSON: "+err.Error())
		return
	}
	applied, err := h.store.Apply(&b)
	if errors.Is(err, ErrInvalidBatch) {
		h.mReceived.WithLabelValues(receivedInvalid).Inc()
		h.log.Warn("learning batch rejected", transportLogBatch, b.ID, transportLogSubject, subject, transportLogError, err.Error())
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		h.mReceived.WithLabelValues(receivedError).Inc()
		h.log.Error("learning batch not stored", transportLogBatch, b.ID, transportLogError, err.Error())
		h.fail(w, http.StatusInternalServerError, "batch not stored")
		return
	}
	if applied {
		h.mReceived.WithLabelValues(receivedApplied).Inc()
	} else {
		h.mReceived.WithLabelValues(receivedDuplicate).Inc()
	}
	h.log.Debug("learning batch received", transportLogBatch, b.ID, transportLogSubject, subject, "applied", applied, "observations", len(b.Observations))
	h.reply(w, BatchResponse{ID: b.ID, Applied: applied})
}

func (h *learningHandler) status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		h.fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if _, ok := h.authenticate(w, r); !ok {
		return
	}
	h.reply(w, StatusResponse{Rulesets: h.store.Status()})
}

func (h *learningHandler) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Debug("learning response not written", transportLogError, err.Error())
	}
}

// fail answers a plain-text error; msg never holds credentials.
func (h *learningHandler) fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
