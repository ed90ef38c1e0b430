package learning

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrRulesetNotFound is returned (wrapped, naming the ruleset) by SetMode
// when no RuntimeRuleset document of that name is in the file.
var ErrRulesetNotFound = errors.New("ruleset not found")

// SetMode sets spec.mode of the RuntimeRuleset named ruleset in a YAML
// file that may hold several documents. Only the mode's value changes:
// every other byte (comments, order, quoting, indentation, other
// documents) stays as it was, and the new value keeps the old one's
// quoting style. When spec has no mode, `mode: <mode>` is inserted as its
// first key, at its keys' indentation. SetMode does not judge the mode:
// validating it (and the file) is the policy loader's job.
func SetMode(content []byte, ruleset, mode string) ([]byte, error) {
	if !modeWord(mode) {
		return nil, fmt.Errorf("set mode of ruleset %q: invalid mode %q", ruleset, mode)
	}
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var spec *yaml.Node
	found := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("set mode of ruleset %q: parse: %w", ruleset, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if modeScalar(modeLookup(root, "kind")) != "RuntimeRuleset" ||
			modeScalar(modeLookup(modeLookup(root, "metadata"), "name")) != ruleset {
			continue
		}
		found++
		spec = modeLookup(root, "spec")
		if spec == nil || spec.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("set mode of ruleset %q: spec is not a mapping", ruleset)
		}
	}
	switch {
	case found == 0:
		return nil, fmt.Errorf("set mode of ruleset %q: %w", ruleset, ErrRulesetNotFound)
	case found > 1:
		return nil, fmt.Errorf("set mode of ruleset %q: %d RuntimeRuleset documents have that name", ruleset, found)
	}
	lines := modeLineStarts(content)
	if v := modeLookup(spec, "mode"); v != nil {
		return modeReplace(content, lines, v, spec.Style&yaml.FlowStyle != 0, ruleset, mode)
	}
	return modeInsert(content, lines, spec, ruleset, mode)
}

// modeWord: modes are plain words, so that a plain, single- or
// double-quoted token needs no escaping.
func modeWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func modeLookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func modeScalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// modeLineStarts lists the byte offset of each line's start.
func modeLineStarts(b []byte) []int {
	starts := []int{0}
	for i, c := range b {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// modeOffset converts a node's line and column (1-based; the column
// counts characters) into a byte offset.
func modeOffset(b []byte, lines []int, line, col int) (int, error) {
	if line < 1 || line > len(lines) {
		return 0, fmt.Errorf("line %d out of range", line)
	}
	off := lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(b) || b[off] == '\n' {
			return 0, fmt.Errorf("column %d out of range on line %d", col, line)
		}
		_, size := utf8.DecodeRune(b[off:])
		off += size
	}
	return off, nil
}

// modeReplace splices the new value over the old value's token.
func modeReplace(b []byte, lines []int, v *yaml.Node, flow bool, ruleset, mode string) ([]byte, error) {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" {
		return nil, fmt.Errorf("set mode of ruleset %q: spec.mode (line %d) is not a string", ruleset, v.Line)
	}
	start, err := modeOffset(b, lines, v.Line, v.Column)
	if err != nil {
		return nil, fmt.Errorf("set mode of ruleset %q: locate spec.mode: %w", ruleset, err)
	}
	var end int
	var repl string
	switch v.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		q := b[start]
		if q != '"' && q != '\'' {
			return nil, fmt.Errorf("set mode of ruleset %q: spec.mode at line %d: expected a quote", ruleset, v.Line)
		}
		end = bytes.IndexByte(b[start+1:], q)
		if end < 0 {
			return nil, fmt.Errorf("set mode of ruleset %q: spec.mode at line %d: unterminated quote", ruleset, v.Line)
		}
		end += start + 2
		if string(b[start+1:end-1]) != v.Value {
			return nil, fmt.Errorf("set mode of ruleset %q: spec.mode at line %d: escaped value, edit it by hand", ruleset, v.Line)
		}
		repl = string(q) + mode + string(q)
	case 0:
		end = start
		for end < len(b) && b[end] != '\n' && b[end] != '\r' && b[end] != '#' && !(flow && strings.IndexByte(",}]", b[end]) >= 0) {
			end++
		}
		for end > start && (b[end-1] == ' ' || b[end-1] == '\t') {
			end--
		}
		if string(b[start:end]) != v.Value {
			return nil, fmt.Errorf("set mode of ruleset %q: spec.mode at line %d: value %q not found where expected", ruleset, v.Line, v.Value)
		}
		repl = mode
	default:
		return nil, fmt.Errorf("set mode of ruleset %q: spec.mode at line %d is a block scalar, edit it by hand", ruleset, v.Line)
	}
	out := make([]byte, 0, len(b)-(end-start)+len(repl))
	out = append(out, b[:start]...)
	out = append(out, repl...)
	return append(out, b[end:]...), nil
}

// modeInsert adds `mode: <mode>` as spec's first key.
func modeInsert(b []byte, lines []int, spec *yaml.Node, ruleset, mode string) ([]byte, error) {
	if spec.Style&yaml.FlowStyle != 0 {
		// spec: {file: ...} → spec: {mode: audit, file: ...}
		start, err := modeOffset(b, lines, spec.Line, spec.Column)
		if err != nil || b[start] != '{' {
			return nil, fmt.Errorf("set mode of ruleset %q: locate spec (line %d)", ruleset, spec.Line)
		}
		ins := "mode: " + mode
		if len(spec.Content) > 0 {
			ins += ", "
		}
		return modeSplice(b, start+1, ins), nil
	}
	if len(spec.Content) == 0 {
		return nil, fmt.Errorf("set mode of ruleset %q: spec is empty, add mode by hand", ruleset)
	}
	first := spec.Content[0]
	start, err := modeOffset(b, lines, first.Line, first.Column)
	if err != nil {
		return nil, fmt.Errorf("set mode of ruleset %q: locate spec's first key: %w", ruleset, err)
	}
	lineStart := lines[first.Line-1]
	indent := b[lineStart:start]
	if len(bytes.Trim(indent, " ")) != 0 {
		return nil, fmt.Errorf("set mode of ruleset %q: spec's first key (line %d) does not start its line, add mode by hand", ruleset, first.Line)
	}
	nl := "\n"
	if e := bytes.IndexByte(b[lineStart:], '\n'); e > 0 && b[lineStart+e-1] == '\r' {
		nl = "\r\n"
	}
	return modeSplice(b, lineStart, string(indent)+"mode: "+mode+nl), nil
}

func modeSplice(b []byte, at int, ins string) []byte {
	out := make([]byte, 0, len(b)+len(ins))
	out = append(out, b[:at]...)
	out = append(out, ins...)
	return append(out, b[at:]...)
}
