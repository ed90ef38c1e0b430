package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policy"
)

// AuditAnnotationViolations is the key of the audit annotation that lists
// a request's violations as JSON. The API server prefixes it with the
// webhook's name: validate.palisade.dev/violations.
const AuditAnnotationViolations = "violations"

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
func decodeReview(body []byte) (*review, error) {
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rv); err != nil {
		return nil, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	want := admissionv1.SchemeGroupVersion.String()
	if rv.APIVersion != want || rv.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected apiVersion %s, kind AdmissionReview; got apiVersion %q, kind %q", want, rv.APIVersion, rv.Kind)
	}
	r := rv.Request
	if r == nil {
		return nil, errors.New("AdmissionReview has no request")
	}
	if r.UID == "" {
		return nil, errors.New("AdmissionReview request has no uid")
	}
	obj, err := decodeObject("object", r.Object.Raw)
	if err != nil {
		return nil, err
	}
	old, err := decodeObject("oldObject", r.OldObject.Raw)
	if err != nil {
		return nil, err
	}
	return &review{
		typeMeta: rv.TypeMeta,
		uid:      r.UID,
		dryRun:   r.DryRun != nil && *r.DryRun,
		req: &bundles.Request{
			UID:         string(r.UID),
			Kind:        bundles.GroupVersionKind{Group: r.Kind.Group, Version: r.Kind.Version, Kind: r.Kind.Kind},
			Namespace:   r.Namespace,
			Name:        r.Name,
			Operation:   string(r.Operation),
			SubResource: r.SubResource,
			UserInfo:    bundles.UserInfo{Username: r.UserInfo.Username, Groups: r.UserInfo.Groups},
			Object:      obj,
			OldObject:   old,
		},
	}, nil
}

// decodeObject decodes an embedded object; numbers stay exact
// (json.Number), as the API server sent them.
func decodeObject(field string, raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("request.%s is not a JSON object: %w", field, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("request.%s is not a JSON object", field)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("request.%s: trailing data", field)
	}
	return obj, nil
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
		if data, err := json.Marshal(d.Violations); err == nil {
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
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
}

// shorten cuts s to at most n runes, ending with an ellipsis when cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
