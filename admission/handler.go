package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/palisade-dev/palisade/bundles"
)

// DefaultMaxRequestBytes bounds an AdmissionReview body. An UPDATE carries
// the object and its old version, each up to the API server's 3 MiB
// request limit, plus less than 1 MiB of review: 7 MiB, as
// controller-runtime allows.
const DefaultMaxRequestBytes = 7 << 20

// maxTimeout bounds the deadline taken from the API server's ?timeout=
// parameter: a webhook's timeout is at most 30 s.
const maxTimeout = 30 * time.Second

// EngineSource returns the engine that decides, nil while no bundle is
// active. *bundles.Client satisfies it.
type EngineSource interface {
	Engine() *bundles.Engine
}

// NamespaceLister gets namespaces from a cache, for their labels. The
// lister of a client-go namespace informer satisfies it (see
// NewNamespaceLister). Get returns a NotFound error
// (k8s.io/apimachinery/pkg/api/errors) for a namespace it does not know.
type NamespaceLister interface {
	Get(name string) (*corev1.Namespace, error)
}

// ImageFactGatherer gathers image verification facts; see
// bundles.ImageFactGatherer.
type ImageFactGatherer = bundles.ImageFactGatherer

var (
	_ EngineSource    = (*bundles.Client)(nil)
	_ NamespaceLister = corev1listers.NamespaceLister(nil)
)

// Options configure a Handler.
type Options struct {
	// Engines gives the active engine (required).
	Engines EngineSource
	// Namespaces gives namespace labels (nil: Rego sees none).
	Namespaces NamespaceLister
	// Images gathers image verification facts when the bundle has
	// verification rules. Nil: none are gathered, and the rules find the
	// images unverifiable (their registryUnavailable action applies).
	Images ImageFactGatherer
	// Now is the evaluation time of each decision (nil: time.Now). Rego
	// never reads the clock; expiring exceptions compare with it.
	Now func() time.Time
	// FailOpen allows requests when no decision can be made: no bundle is
	// active yet, or the evaluation failed. The default, false, denies
	// them (fail closed), so that a webhook that starts before its first
	// bundle does not admit what the policy blocks. Either way the
	// response says why, and the decision is counted as "error".
	FailOpen bool
	// MaxRequestBytes bounds a request body (DefaultMaxRequestBytes if
	// zero); a larger one is refused with 413.
	MaxRequestBytes int64
	// Logger receives the decision log, one line per review (nil: none).
	// It is written on the request path, before the response leaves: a
	// serving process gives it a buffered writer (internal/logbuf), as
	// palisade admission and palisade up do.
	Logger *slog.Logger
	// Registerer receives the metrics (nil: no metrics).
	Registerer prometheus.Registerer
}

// Handler answers admission.k8s.io/v1 AdmissionReviews with the decision
// of the active bundle. It is safe for concurrent use.
type Handler struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// NewHandler checks the options and returns a handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Engines == nil {
		return nil, errors.New("new admission handler: no engine source")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: o, log: o.Logger, metrics: newMetrics(o.Registerer, o.Logger)}, nil
}

// Ready reports whether the handler can decide: a bundle is active.
func (h *Handler) Ready() bool { return h.opts.Engines.Engine() != nil }

// ServeHTTP answers one AdmissionReview. A review is always answered with
// 200 and the decision in its response; a request that is not a review
// (wrong method or media type, a body over the limit, malformed JSON, a
// wrong apiVersion or kind, no request or uid) gets a 4xx and a log line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	growStack()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, http.StatusMethodNotAllowed, "method", "admission reviews are POSTed")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			h.reject(w, r, http.StatusUnsupportedMediaType, "mediaType", "content type must be application/json")
			return
		}
	}
	buf := readBuffers.Get().(*bytes.Buffer)
	defer putReadBuffer(buf)
	body, err := readBody(buf, http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBytes), r.ContentLength, h.opts.MaxRequestBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.reject(w, r, http.StatusRequestEntityTooLarge, "tooLarge",
				"request body is larger than "+strconv.FormatInt(h.opts.MaxRequestBytes, 10)+" bytes")
			return
		}
		h.reject(w, r, http.StatusBadRequest, "read", "read request body: "+err.Error())
		return
	}
	rv, err := decodeReview(body)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, "malformed", err.Error())
		return
	}

	ctx := r.Context()
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		// The API server stops waiting after the webhook's timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, min(t, maxTimeout))
		defer cancel()
	}
	resp, out := h.decide(ctx, rv.req)
	resp.UID = rv.uid
	// The encoder writes nothing unless the whole review encoded (it
	// encodes into its own pooled buffer first).
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(admissionv1.AdmissionReview{TypeMeta: rv.typeMeta, Response: resp}); err != nil {
		// Cannot happen for these types; never answer half a review.
		w.Header().Del("Content-Type")
		h.reject(w, r, http.StatusInternalServerError, "encode", "encode response: "+err.Error())
		return
	}
	latency := time.Since(start)
	h.metrics.requests.WithLabelValues(strconv.Itoa(http.StatusOK)).Inc()
	h.metrics.duration.WithLabelValues(operationLabel(rv.req.Operation), out.decision).Observe(latency.Seconds())
	h.logDecision(ctx, rv, resp, out, latency)
}

// readBuffers recycles request body buffers: a review is read whole,
// decoded (internal/jsonast copies what it keeps), and its body dropped.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer is the largest buffer kept for reuse: a review of a pod
// is a few kilobytes, and an occasional big one is not held on to.
const maxPooledBuffer = 64 << 10

func putReadBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		b.Reset()
		readBuffers.Put(b)
	}
}

// readBody reads a body into buf, sized from its Content-Length (when
// given, and within limit) so that it is read without growing. The
// bytes are valid until buf is reused.
func readBody(buf *bytes.Buffer, body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > 0 {
		// ReadFrom wants MinRead bytes of room before each read, the
		// last one (which finds the end) included.
		buf.Grow(int(min(contentLength, limit)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// outcome is what the decision log and the metrics say about a review.
type outcome struct {
	decision   string // DecisionAllowed, DecisionDenied or DecisionError
	revision   string
	violations []bundles.Violation
}

// decide evaluates a request on the active engine and shapes the
// response.
func (h *Handler) decide(ctx context.Context, req *bundles.Request) (*admissionv1.AdmissionResponse, outcome) {
	eng := h.opts.Engines.Engine()
	if eng == nil {
		return h.undecided(msgNoBundle), outcome{decision: DecisionError}
	}
	facts := bundles.Facts{Now: h.opts.Now(), NamespaceLabels: h.namespaceLabels(req.Namespace)}
	d, err := eng.AdmissionVerified(ctx, req, facts, bundles.Verification{
		Gatherer: h.opts.Images, Namespace: req.Namespace, PullSecrets: PullSecrets(req.ObjectValue),
	})
	if err != nil {
		h.log.Error("admission evaluation failed", keyUID, req.UID, keyRevision, eng.Revision(), keyError, err.Error())
		return h.undecided(fmt.Sprintf(msgEvalFailed, eng.Revision())), outcome{decision: DecisionError, revision: eng.Revision()}
	}
	for _, v := range d.Violations {
		h.metrics.violations.WithLabelValues(v.Rule, v.Action).Inc()
	}
	out := outcome{decision: DecisionAllowed, revision: d.Revision, violations: d.Violations}
	if !d.Allowed {
		out.decision = DecisionDenied
	}
	return response(d), out
}

// namespaceLabels returns the labels of a namespace, nil for cluster-scoped
// requests and for namespaces the lister does not know.
func (h *Handler) namespaceLabels(name string) map[string]string {
	if name == "" || h.opts.Namespaces == nil {
		return nil
	}
	ns, err := h.opts.Namespaces.Get(name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			h.log.Warn("namespace labels unavailable", keyNamespace, name, keyError, err.Error())
		}
		return nil
	}
	return ns.Labels
}

// reject answers a request that is not a valid review, and logs it (never
// its body).
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	h.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.log.Warn("admission request rejected", keyCode, code, keyReason, reason, keyError, msg, keyRemote, r.RemoteAddr)
	http.Error(w, msg, code)
}

// violationLog is what the decision log keeps of a violation: no message,
// whose values may quote the object.
type violationLog struct {
	Rule       string   `json:"rule"`
	Action     string   `json:"action"`
	Containers []string `json:"containers,omitempty"`
}

// logDecision writes the decision log line. It makes the record itself,
// with no caller: slog.Logger's methods capture the caller's program
// counter with runtime.Callers on every call, and the source of this line
// would always be this function. Leaving it out took a review from
// 748,662 to 728,886 instructions (callgrind, ServeHTTP per mix review).
func (h *Handler) logDecision(ctx context.Context, rv *review, resp *admissionv1.AdmissionResponse, out outcome, latency time.Duration) {
	if !h.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	vs := make([]violationLog, len(out.violations))
	for i, v := range out.violations {
		vs[i] = violationLog{Rule: v.Rule, Action: v.Action, Containers: v.Containers}
	}
	req := rv.req
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "admission decision", 0)
	r.AddAttrs(
		slog.String(keyUID, req.UID),
		slog.String(keyNamespace, req.Namespace),
		slog.String(keyKind, kindString(req.Kind)),
		slog.String(keyName, req.Name),
		slog.String(keyOperation, req.Operation),
		slog.String(keySubResource, req.SubResource),
		slog.String(keyUser, req.UserInfo.Username),
		slog.Bool(keyDryRun, rv.dryRun),
		slog.String(keyRevision, out.revision),
		slog.Bool(keyAllowed, resp.Allowed),
		slog.String(keyDecision, out.decision),
		slog.Any(keyViolations, vs),
		slog.Float64(keyLatency, latency.Seconds()),
	)
	_ = h.log.Handler().Handle(ctx, r) // a log write that fails is not the review's failure
}

func kindString(k bundles.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + "/" + k.Kind
	}
	return k.Group + "/" + k.Version + "/" + k.Kind
}

// stackReserve is the goroutine stack a review needs: decoding and
// evaluating a review nest deeply (the evaluator recurses per plan call).
const stackReserve = 32 << 10

// stackSink keeps growStack's frame from being optimised away.
var stackSink byte

// growStack grows the calling goroutine's stack to hold stackReserve at
// once. net/http serves each request on a new goroutine, whose stack
// starts at a few kilobytes: grown step by step, it was copied three
// times per review, at ever larger sizes (7% of the serving process's
// CPU at 1,000 reviews/s). Grown here, it is copied once, while small.
//
//go:noinline
func growStack() {
	var frame [stackReserve]byte
	stackSink = frame[int(stackSink)%len(frame)]
}
