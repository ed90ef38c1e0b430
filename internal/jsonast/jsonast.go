// Package jsonast decodes JSON documents straight into OPA AST values.
//
// The result is what encoding/json (with UseNumber) followed by
// ast.InterfaceToValue makes of the same bytes, without the map[string]any
// in between: the admission webhook decodes every review this way, and
// the map and its conversion were a fifth of a decision's CPU time.
//
// Parsing is github.com/valyala/fastjson's. Where it is more lenient than
// encoding/json, the document is first made canonical by the reference
// path (decode with encoding/json, encode again), so the result never
// differs:
//   - the document is validated strictly first (json.Valid: numbers,
//     escapes, control characters), and a malformed one is refused with
//     encoding/json's error, which gives the offset;
//   - invalid UTF-8 and \u escapes of UTF-16 surrogates, which
//     encoding/json turns into U+FFFD and fastjson keeps, and objects with
//     a duplicate key (encoding/json keeps the last) take the canonical
//     path. The API server never sends any of them.
//
// FuzzDecode and TestDecodeMatchesReference hold the two paths equal.
package jsonast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fastjson"
)

// Document is a parsed JSON document. Its values are valid until
// Release.
type Document struct {
	p    *parser
	root *fastjson.Value
}

// parser is a fastjson parser with the string terms made from its
// document: object keys and short strings repeat ("name", "image",
// "TCP"), and a string term is immutable, so one term serves every
// occurrence.
type parser struct {
	fastjson.Parser
	strs map[string]*ast.Term
}

// maxSharedString is the longest string that is shared.
const maxSharedString = 64

var parsers = sync.Pool{New: func() any { return &parser{strs: map[string]*ast.Term{}} }}

// errNotCanonical says that a document needs the canonical path.
var errNotCanonical = errors.New("jsonast: document needs canonical form")

// Parse parses a JSON document. Release it when done.
func Parse(data []byte) (*Document, error) {
	if !json.Valid(data) {
		// encoding/json says what is wrong, and where.
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			return nil, err
		}
		return nil, errors.New("invalid JSON")
	}
	if !utf8.Valid(data) || hasSurrogateEscape(data) {
		c, err := canonical(data)
		if err != nil {
			return nil, err
		}
		data = c
	}
	p := parsers.Get().(*parser)
	v, err := p.ParseBytes(data)
	if err != nil {
		// json.Valid accepted it, so this is fastjson's depth limit.
		parsers.Put(p)
		return nil, fmt.Errorf("jsonast: %w", err)
	}
	return &Document{p: p, root: v}, nil
}

// Release returns the document's parser to the pool. The document and
// its values must not be used afterwards.
func (d *Document) Release() {
	if d.p != nil {
		clear(d.p.strs)
		parsers.Put(d.p)
		d.p, d.root = nil, nil
	}
}

// Root is the document's top-level value.
func (d *Document) Root() *fastjson.Value { return d.root }

// Decode decodes a whole JSON document into an AST value.
func Decode(data []byte) (ast.Value, error) {
	d, err := Parse(data)
	if err != nil {
		return nil, err
	}
	defer d.Release()
	return d.Value(d.root)
}

// Value converts a value of the document into an AST value. The AST
// shares no memory with the document.
func (d *Document) Value(v *fastjson.Value) (ast.Value, error) {
	x, err := d.p.value(v)
	if errors.Is(err, errNotCanonical) {
		// A duplicate key: convert the canonical form of this value.
		c, err := canonical(v.MarshalTo(nil))
		if err != nil {
			return nil, err
		}
		return Decode(c)
	}
	return x, err
}

func (p *parser) value(v *fastjson.Value) (ast.Value, error) {
	t, err := p.term(v)
	if err != nil {
		return nil, err
	}
	return t.Value, nil
}

func (p *parser) term(v *fastjson.Value) (*ast.Term, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return ast.NullTerm(), nil
	case fastjson.TypeTrue:
		return ast.InternedTerm(true), nil
	case fastjson.TypeFalse:
		return ast.InternedTerm(false), nil
	case fastjson.TypeNumber:
		// MarshalTo gives a number's literal as written: exact, as
		// json.Number keeps it.
		raw := string(v.MarshalTo(nil))
		if t := ast.InternedIntNumberTermFromString(raw); t != nil {
			return t, nil
		}
		// Checked as InterfaceToValue checks it: OPA refuses exponents
		// too large to compute with.
		n, err := ast.NumberChecked(raw)
		if err != nil {
			return nil, err
		}
		return ast.NewTerm(n), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return p.str(b), nil
	case fastjson.TypeArray:
		items, _ := v.Array()
		terms := make([]*ast.Term, len(items))
		for i, item := range items {
			t, err := p.term(item)
			if err != nil {
				return nil, err
			}
			terms[i] = t
		}
		return ast.ArrayTerm(terms...), nil
	case fastjson.TypeObject:
		o, _ := v.Object()
		obj := ast.NewObjectWithCapacity(o.Len())
		var err error
		n := 0
		o.Visit(func(k []byte, item *fastjson.Value) {
			if err != nil {
				return
			}
			var t *ast.Term
			if t, err = p.term(item); err == nil {
				obj.Insert(p.str(k), t)
				n++
			}
		})
		if err != nil {
			return nil, err
		}
		if obj.Len() != n {
			return nil, errNotCanonical
		}
		return ast.NewTerm(obj), nil
	}
	return nil, fmt.Errorf("jsonast: unknown JSON type %v", v.Type())
}

// str returns the term of a string, shared with its other occurrences
// in the document when short.
func (p *parser) str(b []byte) *ast.Term {
	if len(b) > maxSharedString {
		return ast.StringTerm(string(b))
	}
	if t, ok := p.strs[string(b)]; ok {
		return t
	}
	t := ast.InternedTerm(string(b))
	p.strs[string(t.Value.(ast.String))] = t
	return t
}

// canonical re-encodes a valid JSON document the way encoding/json reads
// it: invalid UTF-8 and surrogate escapes become U+FFFD, the last of
// duplicate keys wins, numbers stay as written.
func canonical(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// hasSurrogateEscape reports whether data has a \u escape of a UTF-16
// surrogate (\uD800–\uDFFF), which fastjson does not decode as
// encoding/json does. A backslash that is itself escaped can make this
// say yes for a document without one: that only costs the canonical path.
func hasSurrogateEscape(data []byte) bool {
	for {
		i := bytes.Index(data, []byte(`\u`))
		if i < 0 || i+3 >= len(data) {
			return false
		}
		if c, d := data[i+2], data[i+3]; (c == 'd' || c == 'D') && ('8' <= d && d <= '9' || 'a' <= d && d <= 'f' || 'A' <= d && d <= 'F') {
			return true
		}
		data = data[i+2:]
	}
}
