package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fastjson"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/jsonast"
	"github.com/palisade-dev/palisade/policy"
)

// AuditAnnotationViolations is the key of the audit annotation that lists
// a request's violations as JSON (auditViolation). The API server
// prefixes it with the webhook's name: validate.palisade.dev/violations.
const AuditAnnotationViolations = "violations"

// auditViolation is what the audit annotation says of a violation: all of
// it but its message, which is made of these fields and which the
// warnings or the denial carry. The annotation is escaped again inside
// the response, so each message in it cost twice its length in escaping:
// without them the annotation is half as long.
type auditViolation struct {
	Rule       string   `json:"rule"`
	Action     string   `json:"action"`
	Field      string   `json:"field"`
	Value      string   `json:"value"`
	Containers []string `json:"containers"`
}

// Limits of the API server on warnings: it shortens each to 256 runes and
// drops the rest once they exceed 4,096 runes in total
// (k8s.io/apiserver/pkg/endpoints/filters/warning.go), and drops any that
// is not valid UTF-8 or holds control characters. We shorten first, so
// that a warning ends with a visible ellipsis and a note counts what was
// left out.
const (
	maxWarningRunes      = 256
	maxWarningTotalRunes = 4096
)

// Messages of responses without a policy decision.
const (
	msgNoBundle   = "no Palisade policy bundle is active yet"
	msgEvalFailed = "Palisade could not evaluate policy revision %s (see the webhook's log)"
	msgFailClosed = "; the request is denied until Palisade can decide (fail closed)"
	msgFailOpen   = "palisade: %s; the request was allowed without a policy check (fail open)"
)

// review is a decoded AdmissionReview.
type review struct {
	typeMeta metav1.TypeMeta
	uid      types.UID
	dryRun   bool
	req      *bundles.Request
}

// decodeReview decodes and checks an admission.k8s.io/v1 AdmissionReview.
// Its errors are messages for the sender.
//
// The review is parsed once (internal/jsonast) and its objects become AST
// values directly, the input Rego reads, without a map in between. Only
// the fields Palisade reads are decoded, and their types checked; field
// names are matched exactly, as the API server writes them and as
// Kubernetes' own decoders (sigs.k8s.io/json) read them.
func decodeReview(body []byte) (*review, error) {
	doc, err := jsonast.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	defer doc.Release()
	var (
		rv      review
		request *fastjson.Value
		errs    fields
	)
	errs.object(doc.Root(), "", map[string]*string{"apiVersion": &rv.typeMeta.APIVersion, "kind": &rv.typeMeta.Kind},
		func(key string, v *fastjson.Value) {
			if key == "request" {
				request = v
			}
		})
	if errs.err != nil {
		return nil, errs.err
	}
	want := admissionv1.SchemeGroupVersion.String()
	if rv.typeMeta.APIVersion != want || rv.typeMeta.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected apiVersion %s, kind AdmissionReview; got apiVersion %q, kind %q", want, rv.typeMeta.APIVersion, rv.typeMeta.Kind)
	}
	if request == nil || request.Type() == fastjson.TypeNull {
		return nil, errors.New("AdmissionReview has no request")
	}
	r := &bundles.Request{}
	var object, oldObject *fastjson.Value
	strs := map[string]*string{
		"uid": &r.UID, "namespace": &r.Namespace, "name": &r.Name, "operation": &r.Operation, "subResource": &r.SubResource,
	}
	errs.object(request, "request", strs, func(key string, v *fastjson.Value) {
		switch key {
		case "kind":
			errs.object(v, "request.kind", map[string]*string{"group": &r.Kind.Group, "version": &r.Kind.Version, "kind": &r.Kind.Kind}, nil)
		case "userInfo":
			errs.object(v, "request.userInfo", map[string]*string{"username": &r.UserInfo.Username}, func(key string, v *fastjson.Value) {
				if key == "groups" {
					r.UserInfo.Groups = errs.strs(v, "request.userInfo.groups")
				}
			})
		case "dryRun":
			rv.dryRun = errs.boolean(v, "request.dryRun")
		case "object":
			object = v
		case "oldObject":
			oldObject = v
		}
	})
	if errs.err != nil {
		return nil, errs.err
	}
	if r.UID == "" {
		return nil, errors.New("AdmissionReview request has no uid")
	}
	if r.ObjectValue, err = objectValue(doc, "object", object); err != nil {
		return nil, err
	}
	if r.OldObjectValue, err = objectValue(doc, "oldObject", oldObject); err != nil {
		return nil, err
	}
	rv.uid = types.UID(r.UID)
	rv.req = r
	return &rv, nil
}

// objectValue converts an embedded object; numbers stay exact, as the
// API server sent them. Absent or null is nil.
func objectValue(doc *jsonast.Document, field string, v *fastjson.Value) (ast.Value, error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("request.%s is not a JSON object", field)
	}
	x, err := doc.Value(v)
	if err != nil {
		return nil, fmt.Errorf("request.%s: %w", field, err)
	}
	return x, nil
}

// fields reads the fields of a review and keeps the first error, which
// names the field. A null field reads as absent, as encoding/json reads
// it.
type fields struct{ err error }

func (f *fields) fail(path, want string, v *fastjson.Value) {
	if f.err == nil {
		if path == "" {
			path = "AdmissionReview"
		}
		f.err = fmt.Errorf("malformed AdmissionReview: %s must be %s, not %s", path, want, v.Type())
	}
}

// object reads an object at path (a dotted path; "" for the review): the
// string fields named in strs into their strings, and every other field
// through other (when not nil), in order (of repeated keys, the last
// wins, as in encoding/json).
func (f *fields) object(v *fastjson.Value, path string, strs map[string]*string, other func(key string, v *fastjson.Value)) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return
	}
	o, err := v.Object()
	if err != nil {
		f.fail(path, "an object", v)
		return
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		if dst, ok := strs[string(k)]; ok {
			*dst = f.str(v, path, string(k))
		} else if other != nil {
			other(string(k), v)
		}
	})
}

// str reads a string; the field's path is path.key, built only for an
// error.
func (f *fields) str(v *fastjson.Value, path, key string) string {
	if v.Type() == fastjson.TypeNull {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		f.fail(strings.TrimPrefix(path+"."+key, "."), "a string", v)
	}
	return string(b)
}

func (f *fields) strs(v *fastjson.Value, path string) []string {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	items, err := v.Array()
	if err != nil {
		f.fail(path, "an array of strings", v)
		return nil
	}
	out := make([]string, len(items))
	for i, item := range items {
		switch item.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeString:
			b, _ := item.StringBytes()
			out[i] = string(b)
		default:
			f.fail(path+"["+strconv.Itoa(i)+"]", "a string", item)
			return nil
		}
	}
	return out
}

func (f *fields) boolean(v *fastjson.Value, path string) bool {
	switch v.Type() {
	case fastjson.TypeNull, fastjson.TypeFalse:
		return false
	case fastjson.TypeTrue:
		return true
	}
	f.fail(path, "a boolean", v)
	return false
}

// response turns a decision into an AdmissionResponse: a denial lists the
// message of every blocking violation; log violations become warnings;
// every violation is listed in the audit annotation.
func response(d *bundles.Decision) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{Allowed: d.Allowed, Warnings: warnings(d.Warnings)}
	if !d.Allowed {
		var msgs []string
		for _, v := range d.Violations {
			if v.Action == policy.ActionBlock {
				msgs = append(msgs, v.Message)
			}
		}
		msg := strings.Join(msgs, "; ")
		if msg == "" {
			msg = "denied by Palisade policy revision " + d.Revision
		}
		resp.Result = &metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusForbidden,
			Reason:  metav1.StatusReasonForbidden,
			Message: msg,
		}
	}
	if len(d.Violations) > 0 {
		vs := make([]auditViolation, len(d.Violations))
		for i, v := range d.Violations {
			vs[i] = auditViolation{Rule: v.Rule, Action: v.Action, Field: v.Field, Value: v.Value, Containers: v.Containers}
		}
		if data, err := json.Marshal(vs); err == nil {
			resp.AuditAnnotations = map[string]string{AuditAnnotationViolations: string(data)}
		}
	}
	return resp
}

// undecided answers a request no decision was made for, per FailOpen.
func (h *Handler) undecided(why string) *admissionv1.AdmissionResponse {
	if h.opts.FailOpen {
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{fmt.Sprintf(msgFailOpen, why)}}
	}
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusServiceUnavailable,
		Reason:  metav1.StatusReasonServiceUnavailable,
		Message: why + msgFailClosed,
	}}
}

// warnings makes messages safe to send as warnings (see maxWarningRunes):
// valid UTF-8 without control characters, each at most maxWarningRunes,
// together at most maxWarningTotalRunes, the last one counting what was
// left out.
func warnings(msgs []string) []string {
	if len(msgs) == 0 {
		return nil
	}
	const reserve = 64 // for the note
	out := make([]string, 0, len(msgs))
	total := 0
	for i, m := range msgs {
		m = shorten(sanitize(m), maxWarningRunes)
		n := utf8.RuneCountInString(m)
		if n == 0 {
			continue
		}
		if total+n > maxWarningTotalRunes-reserve {
			out = append(out, fmt.Sprintf("palisade: %d more warning(s) not shown", len(msgs)-i))
			break
		}
		total += n
		out = append(out, m)
	}
	return out
}

// sanitize replaces invalid UTF-8 and control characters with spaces.
// Printable ASCII, which policy messages nearly always are, is returned
// as it is without decoding it rune by rune.
func sanitize(s string) string {
	if printableASCII(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// shorten cuts s to at most n runes, ending with an ellipsis when cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
