package policy

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the nodes decoded from one document, aliases expanded,
// so that an alias bomb ("billion laughs") fails instead of eating memory.
const maxNodes = 1 << 20

// decoder turns a yaml.Node into a Go value strictly: unknown fields,
// duplicate keys and type mismatches are errors with file, line, column and
// field path, and decoding goes on after an error so that every problem is
// reported at once. It records the position of every field it sets.
type decoder struct {
	file      string
	positions map[string]Pos
	errs      ErrorList
	nodes     int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, positions: map[string]Pos{}}
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Pos: d.pos(n), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// unknownFieldNamer is implemented by types whose keys are not plain fields
// (the rule catalog says "unknown rule").
type unknownFieldNamer interface {
	unknownFieldNoun() string
}

func (Rules) unknownFieldNoun() string { return "rule" }

var (
	anyType      = reflect.TypeFor[any]()
	fieldsByType sync.Map // reflect.Type -> map[string][]int
)

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n, path, "document too large: more than %d nodes with aliases expanded", maxNodes)
		}
		return
	}
	d.positions[path] = d.pos(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		v.SetZero()
		return
	}
	if v.Type() == anyType || (v.Kind() == reflect.Map && v.Type().Elem() == anyType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Map:
		if !d.expect(n, path, yaml.MappingNode, "a mapping") {
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, kv := range d.pairs(n, path) {
			key := kv[0].Value
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(kv[1], path+"."+key, elem)
			v.SetMapIndex(reflect.ValueOf(key), elem)
		}
	case reflect.Slice:
		if !d.expect(n, path, yaml.SequenceNode, "a list") {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		if d.expect(n, path, yaml.ScalarNode, "a string") {
			v.SetString(n.Value)
		}
	case reflect.Bool, reflect.Int, reflect.Int64:
		if !d.expect(n, path, yaml.ScalarNode, "a "+v.Kind().String()) {
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, path, "expected a %s, got %q", v.Kind(), n.Value)
		}
	default:
		// Only reachable if a type in this package grows a field kind the
		// decoder does not know; a test decodes every kind to catch it.
		d.errorf(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

func (d *decoder) expect(n *yaml.Node, path string, kind yaml.Kind, what string) bool {
	if n.Kind == kind {
		return true
	}
	d.errorf(n, path, "expected %s, got %s", what, describe(n))
	return false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// pairs returns the key/value pairs of a mapping with YAML merge keys
// (<<: *anchor) resolved: explicit keys override merged ones. A key given
// twice explicitly is an error.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	var merged, explicit [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings")
			continue
		}
		if seen[k.Value] {
			d.errorf(k, path+"."+k.Value, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		explicit = append(explicit, [2]*yaml.Node{k, v})
	}
	// Merged pairs count towards the node budget: merge keys can expand
	// aliases as well.
	if d.nodes += len(merged); d.nodes > maxNodes {
		d.errorf(n, path, "document too large: more than %d nodes with aliases expanded", maxNodes)
		return explicit
	}
	out := make([][2]*yaml.Node, 0, len(merged)+len(explicit))
	for _, kv := range merged {
		if !seen[kv[0].Value] {
			seen[kv[0].Value] = true
			out = append(out, kv)
		}
	}
	return append(out, explicit...)
}

func (d *decoder) mergeSources(v *yaml.Node, path string) [][2]*yaml.Node {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		for _, item := range v.Content {
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	}
	d.errorf(v, path, "merge key (<<) needs a mapping or a list of mappings")
	return nil
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if !d.expect(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	fields := structFields(v.Type())
	noun := "field"
	if namer, ok := v.Interface().(unknownFieldNamer); ok {
		noun = namer.unknownFieldNoun()
	}
	for _, kv := range d.pairs(n, path) {
		key := kv[0].Value
		child := key
		if path != "" {
			child = path + "." + key
		}
		index, ok := fields[key]
		if !ok {
			d.errorf(kv[0], child, "unknown %s %q%s", noun, key, suggest(key, fields))
			continue
		}
		d.decode(kv[1], child, v.FieldByIndex(index))
	}
}

// structFields maps YAML names to field indexes, with inline (embedded)
// structs flattened. Fields tagged "-" are not decoded.
func structFields(t reflect.Type) map[string][]int {
	if m, ok := fieldsByType.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous || opts == "inline" {
			for k, idx := range structFields(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		m[name] = []int{i}
	}
	fieldsByType.Store(t, m)
	return m
}

// suggest names the known field closest to a misspelt one.
func suggest(key string, fields map[string][]int) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(name)); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
