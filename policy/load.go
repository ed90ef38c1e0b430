package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds one policy file. Policy files are small; a larger one
// is a mistake (or an attack) and is refused rather than read.
const MaxFileSize = 4 << 20

// Repo is a loaded and validated policy repository.
type Repo struct {
	Policies  []*Policy
	Rulesets  map[string]*RuntimeRuleset
	Attestors map[string]*Attestor
	Tests     []*PolicyTest
	// Learned holds the LearnedRules by the name of the ruleset they
	// extend. Load has already compiled them into Rulesets; they are kept
	// for tools (what was learned, with its evidence).
	Learned map[string]*LearnedRules
	// FS is the repository the documents were read from; PolicyTest cases
	// read their manifest files from it.
	FS fs.FS
}

// Clusters returns the names of every cluster some policy is assigned to,
// sorted.
func (r *Repo) Clusters() []string {
	set := map[string]bool{}
	for _, p := range r.Policies {
		for _, c := range p.Spec.Clusters {
			set[c] = true
		}
	}
	return sortedKeys(set)
}

// PolicyFor returns the policy assigned to a cluster, or nil.
func (r *Repo) PolicyFor(cluster string) *Policy {
	for _, p := range r.Policies {
		for _, c := range p.Spec.Clusters {
			if c == cluster {
				return p
			}
		}
	}
	return nil
}

// LoadDir loads the repository rooted at dir. See Load.
func LoadDir(dir string) (*Repo, error) {
	return Load(os.DirFS(dir))
}

// Load reads every .yaml and .yml file below the root of fsys (skipping
// dot-directories such as .git), decodes the palisade.dev documents in them
// (several per file), validates and normalises them. Documents of other API
// groups (Kubernetes manifests used by tests) are left alone. When anything
// is wrong, Load returns an ErrorList holding every problem found.
func Load(fsys fs.FS) (*Repo, error) {
	repo := &Repo{Rulesets: map[string]*RuntimeRuleset{}, Attestors: map[string]*Attestor{},
		Learned: map[string]*LearnedRules{}, FS: fsys}
	var errs ErrorList
	walkErr := fs.WalkDir(fsys, ".", func(name string, entry fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &FieldError{Pos: Pos{File: name}, Msg: err.Error()})
			return nil
		}
		if entry.IsDir() {
			if name != "." && strings.HasPrefix(entry.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(name); (ext != ".yaml" && ext != ".yml") || !entry.Type().IsRegular() {
			return nil
		}
		data, err := readFile(fsys, name)
		if err != nil {
			errs = append(errs, &FieldError{Pos: Pos{File: name}, Msg: err.Error()})
			return nil
		}
		errs = append(errs, repo.addFile(name, data)...)
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("walk policy repository: %w", walkErr)
	}
	// Validate even when decoding found problems, so that one run reports
	// every error; decoding goes on past errors, leaving usable documents.
	errs = append(errs, dropShadowed(validate(repo), errs)...)
	if len(errs) > 0 {
		errs.sort()
		return nil, errs.dedupe()
	}
	return repo, nil
}

// dropShadowed leaves out validation errors about a field (or a field
// below it) that already has a decoding error: "expected a list" says it
// all, "at least one cluster is required" after it is noise.
func dropShadowed(validation, decoding ErrorList) ErrorList {
	bad := map[string]bool{}
	for _, e := range decoding {
		bad[e.Pos.File+"\x00"+e.Field] = true
	}
	var out ErrorList
	for _, e := range validation {
		shadowed := false
		for f := e.Field; f != "" && !shadowed; f = parentField(f) {
			shadowed = bad[e.Pos.File+"\x00"+f]
		}
		if !shadowed {
			out = append(out, e)
		}
	}
	return out
}

func parentField(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

// LoadFile decodes the documents of one file into repo without validating
// the repository as a whole. It is exported for the fuzz test and tools.
func (r *Repo) addFile(name string, data []byte) ErrorList {
	var errs ErrorList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for index := 0; ; index++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return errs
		}
		if err != nil {
			return append(errs, syntaxError(name, err))
		}
		if len(doc.Content) == 0 {
			continue
		}
		errs = append(errs, r.addDocument(name, index, doc.Content[0])...)
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(file string, err error) *FieldError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Pos: Pos{File: file, Line: line}, Msg: "invalid YAML: " + m[2]}
	}
	return &FieldError{Pos: Pos{File: file}, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// header is what every document starts with.
type header struct {
	APIVersion string
	Kind       string
}

func readHeader(n *yaml.Node) (h header, apiNode, kindNode *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "apiVersion":
			apiNode = n.Content[i+1]
			h.APIVersion = apiNode.Value
		case "kind":
			kindNode = n.Content[i+1]
			h.Kind = kindNode.Value
		}
	}
	return h, apiNode, kindNode
}

func (r *Repo) addDocument(file string, index int, n *yaml.Node) ErrorList {
	d := newDecoder(file)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "expected a mapping with apiVersion and kind, got %s", describe(n))
		return d.errs
	}
	h, apiNode, kindNode := readHeader(n)
	group, _, _ := strings.Cut(h.APIVersion, "/")
	switch {
	case apiNode == nil:
		d.errorf(n, "apiVersion", "missing apiVersion (want %s)", APIVersion)
		return d.errs
	case group != "palisade.dev":
		return nil // not ours: a Kubernetes manifest that a test uses
	case h.APIVersion != APIVersion:
		d.errorf(apiNode, "apiVersion", "unsupported apiVersion %q (want %s)", h.APIVersion, APIVersion)
		return d.errs
	case kindNode == nil:
		d.errorf(n, "kind", "missing kind")
		return d.errs
	}
	var target any
	switch h.Kind {
	case KindPolicy:
		target = &Policy{}
	case KindRuntimeRuleset:
		target = &RuntimeRuleset{}
	case KindAttestor:
		target = &Attestor{}
	case KindPolicyTest:
		target = &PolicyTest{}
	case KindLearnedRules:
		target = &LearnedRules{}
	default:
		d.errorf(kindNode, "kind", "unknown kind %q (want Policy, RuntimeRuleset, Attestor, PolicyTest or LearnedRules)", h.Kind)
		return d.errs
	}
	// Decode the document into {apiVersion, kind, <target's fields>}.
	doc := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "APIVersion", Type: reflect.TypeFor[string](), Tag: `yaml:"apiVersion"`},
		{Name: "Kind", Type: reflect.TypeFor[string](), Tag: `yaml:"kind"`},
		{Name: "Doc", Type: reflect.TypeOf(target).Elem(), Tag: `yaml:",inline"`, Anonymous: false},
	})).Elem()
	d.decode(n, "", doc)
	reflect.ValueOf(target).Elem().Set(doc.Field(2))
	src := Source{File: file, Index: index, positions: d.positions, docPos: d.pos(n)}
	switch t := target.(type) {
	case *Policy:
		t.Source = src
		r.Policies = append(r.Policies, t)
	case *RuntimeRuleset:
		t.Source = src
		d.errs = append(d.errs, addNamed(r.Rulesets, t.Metadata.Name, t, src, KindRuntimeRuleset)...)
	case *Attestor:
		t.Source = src
		d.errs = append(d.errs, addNamed(r.Attestors, t.Metadata.Name, t, src, KindAttestor)...)
	case *PolicyTest:
		t.Source = src
		r.Tests = append(r.Tests, t)
	case *LearnedRules:
		t.Source = src
		d.errs = append(d.errs, addNamed(r.Learned, t.Metadata.Name, t, src, KindLearnedRules)...)
	}
	return d.errs
}

// sourced is a document that knows where it was read.
type sourced interface {
	source() Source
}

func (p *Policy) source() Source         { return p.Source }
func (p *RuntimeRuleset) source() Source { return p.Source }
func (p *Attestor) source() Source       { return p.Source }
func (p *PolicyTest) source() Source     { return p.Source }
func (p *LearnedRules) source() Source   { return p.Source }

func addNamed[T sourced](m map[string]T, name string, doc T, src Source, kind string) ErrorList {
	if prev, ok := m[name]; ok && name != "" {
		return ErrorList{{Pos: src.Pos("metadata.name"), Field: "metadata.name",
			Msg: fmt.Sprintf("duplicate %s name %q (first defined at %s)", kind, name, prev.source().Pos("metadata.name"))}}
	}
	m[name] = doc
	return nil
}
