package imageverify

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Cosign's annotations on signature and attestation layers.
const (
	annSignature   = "dev.cosignproject.cosign/signature"
	annCertificate = "dev.sigstore.cosign/certificate"
	annChain       = "dev.sigstore.cosign/chain"
	annBundle      = "dev.sigstore.cosign/bundle"

	simpleSigningType = "cosign container image signature"
	inTotoPayloadType = "application/vnd.in-toto+json"
)

// layer is one layer of a .sig or .att image as fetched.
type layer struct {
	mediaType   string
	annotations map[string]string
	data        []byte
	err         string // set when the layer could not be read
}

func (l layer) annotation(key string) []byte {
	if v := l.annotations[key]; v != "" {
		return []byte(v)
	}
	return nil
}

// simpleSigning is the part of a simple-signing payload that binds a
// signature to an image.
type simpleSigning struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// signatureItem reads one layer of a .sig image: a simple-signing payload
// and its base64 signature annotation.
func signatureItem(l layer, digest string) *item {
	it := &item{
		artifact:   l.data,
		certPEM:    l.annotation(annCertificate),
		chainPEM:   l.annotation(annChain),
		bundleJSON: l.annotation(annBundle),
	}
	if l.err != "" {
		it.malformed = ReasonMalformed + ": " + l.err
		return it
	}
	sig, err := base64.StdEncoding.DecodeString(l.annotations[annSignature])
	if err != nil || len(sig) == 0 {
		it.malformed = ReasonMalformed + ": signature annotation"
		return it
	}
	it.sigs = [][]byte{sig}
	it.message = [][]byte{l.data}
	var p simpleSigning
	switch {
	case json.Unmarshal(l.data, &p) != nil || p.Critical.Type != simpleSigningType:
		it.subjectErr = ReasonMalformed + ": not a cosign simple-signing payload"
	case p.Critical.Image.DockerManifestDigest != digest:
		it.subjectErr = ReasonDigestMismatch
	}
	return it
}

// envelope is a DSSE envelope.
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// statement is an in-toto statement (v0.1 or v1).
type statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// attestationItem reads one layer of a .att image: a DSSE envelope of an
// in-toto statement. It returns the statement's predicate type and
// predicate when the statement is about digest.
func attestationItem(l layer, digest string) (*item, string, map[string]any) {
	it := &item{
		artifact:   l.data,
		certPEM:    l.annotation(annCertificate),
		chainPEM:   l.annotation(annChain),
		bundleJSON: l.annotation(annBundle),
	}
	if l.err != "" {
		it.malformed = ReasonMalformed + ": " + l.err
		return it, "", nil
	}
	var env envelope
	if err := json.Unmarshal(l.data, &env); err != nil {
		it.malformed = ReasonMalformed + ": not a DSSE envelope"
		return it, "", nil
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		it.malformed = ReasonMalformed + ": DSSE payload is not base64"
		return it, "", nil
	}
	it.dssePayload = payload
	pae := preAuthEncoding(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		it.sigs = append(it.sigs, sig)
		it.message = append(it.message, pae)
	}
	if env.PayloadType != inTotoPayloadType {
		it.subjectErr = ReasonMalformed + ": DSSE payload type " + strconv.Quote(env.PayloadType)
		return it, "", nil
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil || !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") {
		it.subjectErr = ReasonMalformed + ": not an in-toto statement"
		return it, "", nil
	}
	hexDigest, _ := strings.CutPrefix(digest, "sha256:")
	about := false
	for _, s := range st.Subject {
		if strings.EqualFold(s.Digest["sha256"], hexDigest) {
			about = true
			break
		}
	}
	if !about {
		it.subjectErr = ReasonDigestMismatch
		return it, "", nil
	}
	var predicate map[string]any
	if err := json.Unmarshal(st.Predicate, &predicate); err != nil || predicate == nil {
		it.subjectErr = ReasonMalformed + ": predicate is not an object"
		return it, "", nil
	}
	return it, st.PredicateType, predicate
}

// preAuthEncoding is DSSE's PAE, the bytes a DSSE signature covers:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func preAuthEncoding(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// attestationTime is the scan finish time of a cosign vuln predicate
// (predicate.metadata.scanFinishedOn), else the transparency log's signing
// time, else empty.
func attestationTime(predicate map[string]any, signed time.Time) string {
	if md, ok := predicate["metadata"].(map[string]any); ok {
		if s, ok := md["scanFinishedOn"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t.UTC().Format(time.RFC3339)
			}
		}
	}
	if signed.IsZero() {
		return ""
	}
	return signed.UTC().Format(time.RFC3339)
}
