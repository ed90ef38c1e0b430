package policytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/palisade-dev/palisade/bundles"
)

// MaxManifestSize bounds one manifest file read by eval and test.
const MaxManifestSize = 8 << 20

// Manifest is one Kubernetes object read from a file.
type Manifest struct {
	File   string
	Index  int
	Object map[string]any
}

// Ref names the object as Kind/namespace/name.
func (m Manifest) Ref() string {
	meta, _ := m.Object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	kind, _ := m.Object["kind"].(string)
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}

// ReadManifests reads the YAML or JSON documents of a file; a List's items
// become separate manifests.
func ReadManifests(r io.Reader, file string) ([]Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", file, MaxManifestSize)
	}
	var out []Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		if doc == nil {
			continue
		}
		obj, err := jsonObject(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
			items, _ := obj["items"].([]any)
			for _, item := range items {
				if m, ok := item.(map[string]any); ok {
					out = append(out, Manifest{File: file, Index: i, Object: m})
				}
			}
			continue
		}
		out = append(out, Manifest{File: file, Index: i, Object: obj})
	}
}

// jsonObject turns a decoded YAML document into plain JSON values (what
// the API server would send), refusing anything that is not an object
// with apiVersion and kind.
func jsonObject(doc any) (map[string]any, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object")
	}
	if _, ok := obj["kind"].(string); !ok {
		return nil, fmt.Errorf("not a Kubernetes object: no kind")
	}
	if _, ok := obj["apiVersion"].(string); !ok {
		return nil, fmt.Errorf("not a Kubernetes object: no apiVersion")
	}
	return obj, nil
}

// RequestOptions are the parts of an admission request that a manifest
// does not say.
type RequestOptions struct {
	Namespace   string
	Operation   string
	SubResource string
	User        string
	Groups      []string
}

// Request builds the admission request that creating (or updating,
// connecting to) the object would send.
func Request(obj map[string]any, o RequestOptions) *bundles.Request {
	apiVersion, _ := obj["apiVersion"].(string)
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns := o.Namespace
	if ns == "" {
		ns, _ = meta["namespace"].(string)
	}
	if ns == "" {
		ns = "default"
	}
	op := o.Operation
	if op == "" {
		op = "CREATE"
	}
	return &bundles.Request{
		Kind:        bundles.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Namespace:   ns,
		Name:        name,
		Operation:   op,
		SubResource: o.SubResource,
		UserInfo:    bundles.UserInfo{Username: o.User, Groups: o.Groups},
		Object:      obj,
	}
}
