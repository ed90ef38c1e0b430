// Package irvm evaluates Rego policies from OPA's intermediate
// representation (the plan that `opa build -t plan` writes, package
// github.com/open-policy-agent/opa/v1/ir) directly in Go.
//
// Why: a Palisade decision is a few hundred Rego expressions over a small
// input, and OPA's topdown evaluator spends most of a decision on
// unification, bindings and plugging rather than on the policy's own work
// (see bundles' BenchmarkDecisionParts). OPA's planner has already turned
// the policy into straight-line code over values: blocks, loops, lookups
// and calls. Running that code over ast values, with the built-in
// functions of topdown itself, does the same work without the search
// machinery. The Rego library stays the single definition of what a rule
// means: OPA's compiler and planner produce the program, topdown's
// built-ins compute every function, and bundles' differential tests hold
// this evaluator's decisions equal to topdown's on every case.
//
// The control flow follows the reference implementation of the IR, OPA's
// Wasm compiler (internal/compiler/wasm): every block is a label; a
// statement that is undefined leaves the innermost label; BreakStmt
// leaves Index+1 labels; a scan's body is a loop label inside the scan's
// own label (so leaving the body continues with the next element and
// leaving one more label ends the scan); NotStmt and WithStmt wrap their
// block in a label. Functions with exactly two parameters (input and
// data: rules without arguments) are memoized for one evaluation, as in
// Wasm.
//
// Not supported (Compile refuses such a plan, and callers keep using
// topdown): CallDynamicStmt (references into data with a variable in the
// path that may reach rules), and built-ins that topdown does not
// register.
package irvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrUnsupported is wrapped by Compile's error for a plan that uses what
// this evaluator does not implement.
var ErrUnsupported = errors.New("irvm: unsupported")

// Program is a compiled plan: immutable and safe for concurrent use.
type Program struct {
	pool    sync.Pool // of *machine
	funcs   []*function
	plans   map[string]*function
	strings []*ast.Term
	numbers []*ast.Term // Static strings read as numbers (MakeNumberRefStmt)
	nmemo   int
}

type function struct {
	name    string
	params  []int
	ret     int
	blocks  [][]stmt
	nlocals int
	memo    int // index into the memo table, or -1
}

type opcode uint8

const (
	opReturn opcode = iota
	opCall
	opCallBuiltin
	opBlock
	opBreak
	opDot
	opLen
	opScan
	opNot
	opAssignInt
	opAssignVar
	opAssignVarOnce
	opResetLocal
	opMakeNull
	opMakeNumberInt
	opMakeNumberRef
	opMakeArray
	opMakeObject
	opMakeSet
	opEqual
	opNotEqual
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opArrayAppend
	opObjectInsert
	opObjectInsertOnce
	opObjectMerge
	opSetAdd
	opWith
	opNop
	opResultSetAdd
	// Folded by the linker (fold): a composite literal built in one step.
	opMakeArrayOf // target = [args...], or a.konst when all are constants
	opMakeSetOf   // target = {args...}
	opMakeObjectOf
)

// operand is a local (local >= 0) or a constant term.
type operand struct {
	local int
	konst *ast.Term
}

type stmt struct {
	op      opcode
	a, b    operand // sources: DotStmt source/key, EqualStmt a/b, insert key/value
	target  int
	index   int // BreakStmt index, MakeArray capacity
	integer int64
	args    []operand
	fn      *function
	builtin *builtinCall
	blocks  [][]stmt // BlockStmt blocks; Scan/Not/With body in blocks[0]
	key     int      // ScanStmt key local
	value   int      // ScanStmt value local
	path    []*ast.Term
	loc     *ir.Location
}

type builtinCall struct {
	name string
	fn   topdown.BuiltinFunc
	decl *ast.Builtin
}

// Compile links a plan (the JSON of bundle.PlanFile) into a Program.
func Compile(planJSON []byte) (*Program, error) {
	var pol ir.Policy
	if err := json.Unmarshal(planJSON, &pol); err != nil {
		return nil, fmt.Errorf("irvm: read plan: %w", err)
	}
	return link(&pol)
}

// link turns a parsed plan into a Program.
func link(pol *ir.Policy) (*Program, error) {
	p := &Program{plans: map[string]*function{}}
	if pol.Static != nil {
		for _, s := range pol.Static.Strings {
			p.strings = append(p.strings, ast.StringTerm(s.Value))
			p.numbers = append(p.numbers, ast.NumberTerm(json.Number(s.Value)))
		}
	}
	byName := map[string]*function{}
	if pol.Funcs != nil {
		for _, f := range pol.Funcs.Funcs {
			fn := &function{name: f.Name, ret: int(f.Return), memo: -1}
			for _, l := range f.Params {
				fn.params = append(fn.params, int(l))
			}
			if len(f.Params) == 2 {
				fn.memo = p.nmemo
				p.nmemo++
			}
			byName[f.Name] = fn
			p.funcs = append(p.funcs, fn)
		}
	}
	l := &linker{prog: p, byName: byName}
	if pol.Funcs != nil {
		for i, f := range pol.Funcs.Funcs {
			fn := p.funcs[i]
			if err := l.body(fn, f.Blocks, max(fn.ret, maxOf(fn.params))); err != nil {
				return nil, fmt.Errorf("function %s: %w", f.Name, err)
			}
		}
	}
	if pol.Plans != nil {
		for _, pl := range pol.Plans.Plans {
			fn := &function{name: pl.Name, ret: -1, memo: -1}
			if err := l.body(fn, pl.Blocks, 0); err != nil {
				return nil, fmt.Errorf("plan %s: %w", pl.Name, err)
			}
			p.plans[pl.Name] = fn
		}
	}
	return p, nil
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

type linker struct {
	prog   *Program
	byName map[string]*function
	max    int // highest local seen in the function being linked
}

// body links the blocks of a function or plan whose highest parameter
// or result local is maxLocal.
func (l *linker) body(fn *function, blocks []*ir.Block, maxLocal int) error {
	l.max = max(maxLocal, int(ir.Data))
	for _, b := range blocks {
		stmts, err := l.block(b)
		if err != nil {
			return err
		}
		fn.blocks = append(fn.blocks, stmts)
	}
	fn.nlocals = l.max + 1
	unshare(fn.blocks)
	return nil
}

func (l *linker) local(x ir.Local) int {
	l.max = max(l.max, int(x))
	return int(x)
}

func (l *linker) operand(o ir.Operand) (operand, error) {
	v := o.Value
	switch p := v.(type) { // the JSON reader makes pointers
	case *ir.Local:
		v = *p
	case *ir.StringIndex:
		v = *p
	case *ir.Bool:
		v = *p
	}
	switch v := v.(type) {
	case ir.Local:
		return operand{local: l.local(v)}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(l.prog.strings) {
			return operand{}, fmt.Errorf("string index %d out of range", v)
		}
		return operand{local: -1, konst: l.prog.strings[v]}, nil
	case ir.Bool:
		return operand{local: -1, konst: ast.BooleanTerm(bool(v))}, nil
	}
	return operand{}, fmt.Errorf("%w: operand %T", ErrUnsupported, o.Value)
}

func (l *linker) block(b *ir.Block) ([]stmt, error) {
	out := make([]stmt, 0, len(b.Stmts))
	for _, s := range b.Stmts {
		st, err := l.stmt(s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return fold(out), nil
}

// fold builds each composite literal in one step: the planner makes an
// empty array, set or object and then appends, adds or inserts each
// element, one statement (and one copy of the array) at a time, with the
// statements that compute nested elements in between. Nothing reads the
// composite before its last element is in, so a MakeArray and the
// ArrayAppend statements on its local become one opMakeArrayOf at the
// last append (sets and objects alike). Then constants are propagated
// through the block: a literal whose elements are all constants becomes
// a constant built once, shared by every evaluation (the planner never
// changes a composite after building it; unshare covers the rest).
// Objects are folded only when their keys are distinct constants (a
// repeated key would be an insert that replaces).
func fold(in []stmt) []stmt {
	for {
		out, changed := foldOnce(in)
		in = out
		if !changed {
			return propagate(in)
		}
	}
}

// foldOnce folds the composites whose elements need no further folding.
func foldOnce(in []stmt) ([]stmt, bool) {
	out := make([]stmt, 0, len(in))
	changed := false
	for i := 0; i < len(in); i++ {
		s := in[i]
		add, ok := adders[s.op]
		if !ok {
			out = append(out, s)
			continue
		}
		var inserts, between []int
		for j := i + 1; j < len(in); j++ {
			e := &in[j]
			if e.op == add && e.target == s.target && e.a.local != s.target && e.b.local != s.target {
				inserts = append(inserts, j)
				continue
			}
			if len(e.blocks) > 0 || touches(e, s.target) {
				break
			}
			between = append(between, j)
		}
		if len(inserts) == 0 {
			out = append(out, s)
			continue
		}
		last := inserts[len(inserts)-1]
		between = slices.DeleteFunc(between, func(j int) bool { return j > last })
		if !movable(in, inserts, between) || (add == opObjectInsert && !distinctConstKeys(in, inserts)) {
			out = append(out, s)
			continue
		}
		folded := stmt{op: folds[s.op], target: s.target, loc: s.loc}
		for _, k := range inserts {
			folded.args = append(folded.args, in[k].a)
			if add == opObjectInsert {
				folded.args = append(folded.args, in[k].b)
			}
		}
		for _, j := range between {
			out = append(out, in[j])
		}
		out = append(out, folded)
		i = last
		changed = true
	}
	return out, changed
}

var (
	adders = map[opcode]opcode{opMakeArray: opArrayAppend, opMakeSet: opSetAdd, opMakeObject: opObjectInsert}
	folds  = map[opcode]opcode{opMakeArray: opMakeArrayOf, opMakeSet: opMakeSetOf, opMakeObject: opMakeObjectOf}
)

// movable reports whether the element operands of inserts keep their
// values until the last insert: the folded statement reads them there.
func movable(in []stmt, inserts, between []int) bool {
	for _, k := range inserts {
		for _, j := range between {
			if j > k && (writes(&in[j], in[k].a.local) || writes(&in[j], in[k].b.local)) {
				return false
			}
		}
	}
	return true
}

// touches reports whether a statement (without nested blocks) reads or
// writes a local.
func touches(s *stmt, local int) bool {
	if s.a.local == local || s.b.local == local || writes(s, local) {
		return true
	}
	for _, a := range s.args {
		if a.local == local {
			return true
		}
	}
	return false
}

// writes reports whether a statement (without nested blocks) may write a
// local: every statement that writes one names it as its target.
func writes(s *stmt, local int) bool {
	return local >= 0 && (s.target == local || (s.op == opScan && (s.key == local || s.value == local)))
}

// propagate replaces the operands of folded composites that read a local
// holding a constant at that point with the constant, and makes a
// composite of constants a constant.
func propagate(in []stmt) []stmt {
	known := map[int]*ast.Term{}
	konst := func(o operand) operand {
		if o.local >= 0 && known[o.local] != nil {
			return operand{local: -1, konst: known[o.local]}
		}
		return o
	}
	for i := range in {
		s := &in[i]
		switch s.op {
		case opMakeNumberRef:
			known[s.target] = s.a.konst
		case opMakeNumberInt:
			known[s.target] = ast.InternedTerm(int(s.integer))
		case opMakeNull:
			known[s.target] = ast.InternedNullTerm
		case opAssignVar:
			if c := konst(s.a); c.local < 0 {
				known[s.target] = c.konst
			} else {
				delete(known, s.target)
			}
		case opMakeArrayOf, opMakeSetOf, opMakeObjectOf:
			isConst := true
			for k, a := range s.args {
				s.args[k] = konst(a)
				isConst = isConst && s.args[k].local < 0
			}
			delete(known, s.target)
			if isConst {
				s.a = operand{local: -1, konst: composite(&frame{}, s)}
				known[s.target] = s.a.konst
			}
		default:
			delete(known, s.target)
			if s.op == opScan {
				delete(known, s.key)
				delete(known, s.value)
			}
			if len(s.blocks) > 0 {
				clear(known)
			}
		}
	}
	return in
}

func distinctConstKeys(in []stmt, inserts []int) bool {
	var seen []ast.Value
	for _, k := range inserts {
		key := in[k].a
		if key.local >= 0 {
			return false
		}
		for _, v := range seen {
			if v.Compare(key.konst.Value) == 0 {
				return false
			}
		}
		seen = append(seen, key.konst.Value)
	}
	return true
}

// unshare keeps a constant literal (fold) only where nothing in its
// function appends, adds or inserts into the local it is assigned to:
// a constant is shared by every evaluation and must never change.
func unshare(blocks [][]stmt) {
	mutated := map[int]bool{}
	walk(blocks, func(s *stmt) {
		switch s.op {
		case opArrayAppend, opSetAdd, opObjectInsert, opObjectInsertOnce:
			mutated[s.target] = true
		}
	})
	walk(blocks, func(s *stmt) {
		switch s.op {
		case opMakeArrayOf, opMakeSetOf, opMakeObjectOf:
			if mutated[s.target] {
				s.a.konst = nil
			}
		}
	})
}

func walk(blocks [][]stmt, f func(*stmt)) {
	for _, b := range blocks {
		for i := range b {
			f(&b[i])
			walk(b[i].blocks, f)
		}
	}
}

// composite builds the value of an opMakeArrayOf, opMakeSetOf or
// opMakeObjectOf.
func composite(f *frame, s *stmt) *ast.Term {
	switch s.op {
	case opMakeArrayOf:
		elems := make([]*ast.Term, len(s.args))
		for i, a := range s.args {
			elems[i] = f.get(a)
		}
		return ast.NewTerm(ast.NewArray(elems...))
	case opMakeSetOf:
		elems := make([]*ast.Term, len(s.args))
		for i, a := range s.args {
			elems[i] = f.get(a)
		}
		return ast.NewTerm(ast.NewSet(elems...))
	default:
		items := make([][2]*ast.Term, len(s.args)/2)
		for i := range items {
			items[i] = [2]*ast.Term{f.get(s.args[2*i]), f.get(s.args[2*i+1])}
		}
		return ast.NewTerm(ast.NewObject(items...))
	}
}

func (l *linker) blocks(bs []*ir.Block) ([][]stmt, error) {
	out := make([][]stmt, 0, len(bs))
	for _, b := range bs {
		s, err := l.block(b)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *linker) stmt(s ir.Stmt) (st stmt, err error) {
	ops := func(dst *operand, o ir.Operand) {
		if err == nil {
			*dst, err = l.operand(o)
		}
	}
	st.loc = s.GetLocation()
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		st.op, st.a = opReturn, operand{local: l.local(s.Source)}
	case *ir.CallStmt:
		st.target = l.local(s.Result)
		st.args = make([]operand, len(s.Args))
		for i, a := range s.Args {
			ops(&st.args[i], a)
		}
		if fn, ok := l.byName[s.Func]; ok {
			st.op, st.fn = opCall, fn
			if len(st.args) != len(fn.params) {
				return st, fmt.Errorf("call of %s with %d arguments, it takes %d", s.Func, len(st.args), len(fn.params))
			}
			break
		}
		f := topdown.GetBuiltin(s.Func)
		decl := ast.BuiltinMap[s.Func]
		if f == nil || decl == nil {
			return st, fmt.Errorf("%w: built-in %s", ErrUnsupported, s.Func)
		}
		st.op, st.builtin = opCallBuiltin, &builtinCall{name: s.Func, fn: f, decl: decl}
	case *ir.CallDynamicStmt:
		return st, fmt.Errorf("%w: dynamic call (data reference with a variable)", ErrUnsupported)
	case *ir.BlockStmt:
		st.op = opBlock
		st.blocks, err = l.blocks(s.Blocks)
	case *ir.BreakStmt:
		st.op, st.index = opBreak, int(s.Index)
	case *ir.DotStmt:
		st.op, st.target = opDot, l.local(s.Target)
		ops(&st.a, s.Source)
		ops(&st.b, s.Key)
	case *ir.LenStmt:
		st.op, st.target = opLen, l.local(s.Target)
		ops(&st.a, s.Source)
	case *ir.ScanStmt:
		st.op, st.a, st.key, st.value = opScan, operand{local: l.local(s.Source)}, l.local(s.Key), l.local(s.Value)
		st.blocks, err = l.blocks([]*ir.Block{s.Block})
	case *ir.NotStmt:
		st.op = opNot
		st.blocks, err = l.blocks([]*ir.Block{s.Block})
	case *ir.AssignIntStmt:
		st.op, st.target, st.integer = opAssignInt, l.local(s.Target), s.Value
	case *ir.AssignVarStmt:
		st.op, st.target = opAssignVar, l.local(s.Target)
		ops(&st.a, s.Source)
	case *ir.AssignVarOnceStmt:
		st.op, st.target = opAssignVarOnce, l.local(s.Target)
		ops(&st.a, s.Source)
	case *ir.ResetLocalStmt:
		st.op, st.target = opResetLocal, l.local(s.Target)
	case *ir.MakeNullStmt:
		st.op, st.target = opMakeNull, l.local(s.Target)
	case *ir.MakeNumberIntStmt:
		st.op, st.target, st.integer = opMakeNumberInt, l.local(s.Target), s.Value
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(l.prog.numbers) {
			return st, fmt.Errorf("number index %d out of range", s.Index)
		}
		st.op, st.target, st.a = opMakeNumberRef, l.local(s.Target), operand{local: -1, konst: l.prog.numbers[s.Index]}
	case *ir.MakeArrayStmt:
		st.op, st.target, st.index = opMakeArray, l.local(s.Target), int(s.Capacity)
	case *ir.MakeObjectStmt:
		st.op, st.target = opMakeObject, l.local(s.Target)
	case *ir.MakeSetStmt:
		st.op, st.target = opMakeSet, l.local(s.Target)
	case *ir.EqualStmt:
		st.op = opEqual
		ops(&st.a, s.A)
		ops(&st.b, s.B)
	case *ir.NotEqualStmt:
		st.op = opNotEqual
		ops(&st.a, s.A)
		ops(&st.b, s.B)
	case *ir.IsArrayStmt:
		st.op = opIsArray
		ops(&st.a, s.Source)
	case *ir.IsObjectStmt:
		st.op = opIsObject
		ops(&st.a, s.Source)
	case *ir.IsSetStmt:
		st.op = opIsSet
		ops(&st.a, s.Source)
	case *ir.IsDefinedStmt:
		st.op, st.a = opIsDefined, operand{local: l.local(s.Source)}
	case *ir.IsUndefinedStmt:
		st.op, st.a = opIsUndefined, operand{local: l.local(s.Source)}
	case *ir.ArrayAppendStmt:
		st.op, st.target = opArrayAppend, l.local(s.Array)
		ops(&st.a, s.Value)
	case *ir.ObjectInsertStmt:
		st.op, st.target = opObjectInsert, l.local(s.Object)
		ops(&st.a, s.Key)
		ops(&st.b, s.Value)
	case *ir.ObjectInsertOnceStmt:
		st.op, st.target = opObjectInsertOnce, l.local(s.Object)
		ops(&st.a, s.Key)
		ops(&st.b, s.Value)
	case *ir.ObjectMergeStmt:
		st.op, st.a, st.b, st.target = opObjectMerge, operand{local: l.local(s.A)}, operand{local: l.local(s.B)}, l.local(s.Target)
	case *ir.SetAddStmt:
		st.op, st.target = opSetAdd, l.local(s.Set)
		ops(&st.a, s.Value)
	case *ir.WithStmt:
		st.op, st.target = opWith, l.local(s.Local)
		ops(&st.a, s.Value)
		for _, i := range s.Path {
			if i < 0 || i >= len(l.prog.strings) {
				return st, fmt.Errorf("with path string %d out of range", i)
			}
			st.path = append(st.path, l.prog.strings[i])
		}
		if err == nil {
			st.blocks, err = l.blocks([]*ir.Block{s.Block})
		}
	case *ir.NopStmt:
		st.op = opNop
	case *ir.ResultSetAddStmt:
		st.op, st.a = opResultSetAdd, operand{local: l.local(s.Value)}
	default:
		return st, fmt.Errorf("%w: statement %T", ErrUnsupported, s)
	}
	return st, err
}

// Eval runs the plan named entrypoint (as the planner names it: the
// entry point's path with slashes, e.g. "palisade/admission/decision")
// with input and data, and returns the entry point's value, or nil when
// it is undefined. Built-in errors are returned as topdown does with
// StrictBuiltinErrors: the first one, after the evaluation.
func (p *Program) Eval(ctx context.Context, entrypoint string, input, data *ast.Term) (*ast.Term, error) {
	plan, ok := p.plans[entrypoint]
	if !ok {
		return nil, fmt.Errorf("irvm: no plan %q", entrypoint)
	}
	m := p.machine(ctx)
	defer p.release(m)
	f := m.push(plan.nlocals)
	f.l[ir.Input] = input
	f.l[ir.Data] = data
	for _, b := range plan.blocks {
		c, err := m.run(f, b)
		if err != nil {
			return nil, err
		}
		if c > 0 || c == ctlReturn {
			break
		}
	}
	if m.err != nil {
		return nil, m.err
	}
	if m.result == nil {
		return nil, nil
	}
	// The planner adds {"result": value} for an entry point.
	if obj, ok := m.result.Value.(ast.Object); ok {
		if v := obj.Get(resultKey); v != nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("irvm: plan %s added %v to its result set", entrypoint, m.result)
}

// machine returns an evaluation's state, from a pool: a decision makes
// hundreds of calls, and their frames come from one stack.
func (p *Program) machine(ctx context.Context) *machine {
	m, _ := p.pool.Get().(*machine)
	if m == nil {
		m = &machine{prog: p, memo: make([]*ast.Term, p.nmemo)}
		m.iterFn = m.iter
	}
	m.bctx = topdown.BuiltinContext{Context: ctx}
	return m
}

func (p *Program) release(m *machine) {
	clear(m.memo)
	clear(m.stack)
	clear(m.args)
	m.stack, m.args = m.stack[:0], m.args[:0]
	m.frames = m.frames[:0]
	m.result, m.err, m.out, m.steps = nil, nil, nil, 0
	m.bctx = topdown.BuiltinContext{}
	p.pool.Put(m)
}

// push allocates a frame of n locals on the machine's stack. Frames are
// popped in reverse order (pop).
func (m *machine) push(n int) *frame {
	base := len(m.stack)
	if cap(m.stack)-base < n {
		grown := make([]*ast.Term, base, 2*cap(m.stack)+n)
		copy(grown, m.stack)
		m.stack = grown
		// Frames below keep their own slices into the old array: they
		// stay valid, as nothing else writes there. Their copies in the
		// new array go stale, which is why push clears what it hands out.
	}
	m.stack = m.stack[:base+n]
	clear(m.stack[base:])
	m.frames = append(m.frames, frame{l: m.stack[base : base+n : base+n], base: base})
	return &m.frames[len(m.frames)-1]
}

func (m *machine) pop(f *frame) {
	m.stack = m.stack[:f.base]
	m.frames = m.frames[:len(m.frames)-1]
}

var resultKey = ast.StringTerm("result")

type machine struct {
	prog   *Program
	memo   []*ast.Term
	bctx   topdown.BuiltinContext
	result *ast.Term
	err    error // first built-in error
	stack  []*ast.Term
	frames []frame
	args   []*ast.Term
	out    *ast.Term
	iterFn func(*ast.Term) error
	steps  int // scan iterations, to check for cancellation now and then
}

type frame struct {
	l    []*ast.Term
	ret  *ast.Term
	base int
}

func (f *frame) get(o operand) *ast.Term {
	if o.local < 0 {
		return o.konst
	}
	return f.l[o.local]
}

// Control values run returns besides a label count: the block completed,
// or a function returned.
const (
	ctlDone   = -1
	ctlReturn = -2
)

// conflictError is a Rego conflict (a complete rule or function with two
// values, an object key with two values): an evaluation error, as in
// topdown.
type conflictError struct {
	what string
	loc  *ir.Location
}

func (e *conflictError) Error() string {
	if e.loc != nil && e.loc.File >= 0 {
		return fmt.Sprintf("eval_conflict_error: %s (row %d, col %d)", e.what, e.loc.Row, e.loc.Col)
	}
	return "eval_conflict_error: " + e.what
}

// run executes a block. It returns ctlDone when the block ran to its end,
// ctlReturn when a ReturnLocalStmt ran, or n >= 0 to leave n labels
// above this block (0: leave this block: it is undefined or broke out).
func (m *machine) run(f *frame, stmts []stmt) (int, error) {
	for i := range stmts {
		s := &stmts[i]
		switch s.op {
		case opReturn:
			f.ret = f.l[s.a.local]
			return ctlReturn, nil
		case opCall:
			v, err := m.call(s.fn, f, s.args)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			f.l[s.target] = v
		case opCallBuiltin:
			v, err := m.builtin(s, f)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			f.l[s.target] = v
		case opBlock:
			for _, b := range s.blocks {
				c, err := m.run(f, b)
				if err != nil || c == ctlReturn {
					return c, err
				}
				if c > 0 {
					return c - 1, nil
				}
			}
		case opBreak:
			return s.index, nil
		case opDot:
			v := dot(f.get(s.a), f.get(s.b))
			if v == nil {
				return 0, nil
			}
			f.l[s.target] = v
		case opLen:
			n, ok := length(f.get(s.a))
			if !ok {
				return 0, nil
			}
			f.l[s.target] = ast.InternedTerm(n)
		case opScan:
			c, err := m.scan(f, s)
			if err != nil || c != ctlDone {
				return c, err
			}
		case opNot:
			c, err := m.run(f, s.blocks[0])
			if err != nil || c == ctlReturn {
				return c, err
			}
			switch {
			case c == ctlDone: // the negated block holds: not is undefined
				return 0, nil
			case c > 0:
				return c - 1, nil
			}
		case opAssignInt:
			f.l[s.target] = ast.InternedTerm(int(s.integer))
		case opAssignVar:
			f.l[s.target] = f.get(s.a)
		case opAssignVarOnce:
			v := f.get(s.a)
			if old := f.l[s.target]; old != nil && !old.Equal(v) {
				return 0, &conflictError{"complete rules must not produce multiple outputs", s.loc}
			}
			f.l[s.target] = v
		case opResetLocal:
			f.l[s.target] = nil
		case opMakeNull:
			f.l[s.target] = ast.InternedNullTerm
		case opMakeNumberInt:
			f.l[s.target] = ast.InternedTerm(int(s.integer))
		case opMakeNumberRef:
			f.l[s.target] = s.a.konst
		case opMakeArray:
			f.l[s.target] = emptyArray
		case opMakeObject:
			f.l[s.target] = emptyObject
		case opMakeSet:
			f.l[s.target] = emptySet
		case opEqual:
			if !equal(f.get(s.a), f.get(s.b)) {
				return 0, nil
			}
		case opNotEqual:
			if equal(f.get(s.a), f.get(s.b)) {
				return 0, nil
			}
		case opIsArray:
			if _, ok := f.get(s.a).Value.(*ast.Array); !ok {
				return 0, nil
			}
		case opIsObject:
			if _, ok := f.get(s.a).Value.(ast.Object); !ok {
				return 0, nil
			}
		case opIsSet:
			if _, ok := f.get(s.a).Value.(ast.Set); !ok {
				return 0, nil
			}
		case opIsDefined:
			if f.l[s.a.local] == nil {
				return 0, nil
			}
		case opIsUndefined:
			if f.l[s.a.local] != nil {
				return 0, nil
			}
		case opArrayAppend:
			arr := f.l[s.target]
			if arr == emptyArray {
				f.l[s.target] = ast.NewTerm(ast.NewArray(f.get(s.a)))
				break
			}
			a, ok := arr.Value.(*ast.Array)
			if !ok {
				return 0, fmt.Errorf("irvm: append to %s", ast.ValueName(arr.Value))
			}
			arr.Value = a.Append(f.get(s.a))
		case opObjectInsert:
			obj, err := m.ownObject(f, s.target)
			if err != nil {
				return 0, err
			}
			obj.Insert(f.get(s.a), f.get(s.b))
		case opObjectInsertOnce:
			obj, err := m.ownObject(f, s.target)
			if err != nil {
				return 0, err
			}
			k, v := f.get(s.a), f.get(s.b)
			if old := obj.Get(k); old != nil && !old.Equal(v) {
				return 0, &conflictError{"object keys must be unique", s.loc}
			}
			obj.Insert(k, v)
		case opObjectMerge:
			a, okA := f.l[s.a.local].Value.(ast.Object)
			b, okB := f.l[s.b.local].Value.(ast.Object)
			if !okA || !okB {
				return 0, &conflictError{"object merge of non-objects", s.loc}
			}
			merged, ok := a.Merge(b)
			if !ok {
				return 0, &conflictError{"object keys must be unique", s.loc}
			}
			f.l[s.target] = ast.NewTerm(merged)
		case opSetAdd:
			if f.l[s.target] == emptySet {
				f.l[s.target] = ast.NewTerm(ast.NewSet(f.get(s.a)))
				break
			}
			set, ok := f.l[s.target].Value.(ast.Set)
			if !ok {
				return 0, fmt.Errorf("irvm: add to %s", ast.ValueName(f.l[s.target].Value))
			}
			set.Add(f.get(s.a))
		case opWith:
			c, err := m.with(f, s)
			if err != nil || c != ctlDone {
				return c, err
			}
		case opMakeArrayOf, opMakeSetOf, opMakeObjectOf:
			if s.a.konst != nil {
				f.l[s.target] = s.a.konst
			} else {
				f.l[s.target] = composite(f, s)
			}
		case opNop:
		case opResultSetAdd:
			if m.result == nil {
				m.result = f.l[s.a.local]
			} else if !m.result.Equal(f.l[s.a.local]) {
				return 0, &conflictError{"the entry point has more than one result", s.loc}
			}
		default:
			return 0, fmt.Errorf("irvm: opcode %d", s.op)
		}
	}
	return ctlDone, nil
}

// Empty composites are shared until something is put in them: a
// decision makes dozens of sets (partial rules, comprehensions) that stay
// empty. The first append, add or insert replaces the local's shared
// empty value with a new composite; the planner builds a composite in
// the local it made it in, and nothing reads it before it is complete,
// so no other local holds the shared value meanwhile.
var (
	emptyArray  = ast.NewTerm(ast.NewArray())
	emptyObject = ast.NewTerm(ast.NewObject())
	emptySet    = ast.NewTerm(ast.NewSet())
)

// ownObject returns the object in a local for an insert, replacing the
// shared empty object with a new one.
func (m *machine) ownObject(f *frame, local int) (ast.Object, error) {
	if f.l[local] == emptyObject {
		obj := ast.NewObject()
		f.l[local] = ast.NewTerm(obj)
		return obj, nil
	}
	obj, ok := f.l[local].Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("irvm: insert into %s", ast.ValueName(f.l[local].Value))
	}
	return obj, nil
}

// scan runs the body for each element of an array, object or set (in
// topdown's order: index, sorted keys), and nothing for a scalar. It
// returns ctlDone to continue after the scan.
func (m *machine) scan(f *frame, s *stmt) (int, error) {
	switch src := f.l[s.a.local].Value.(type) {
	case *ast.Array:
		for i := range src.Len() {
			if c, stop, err := m.step(f, s, ast.InternedTerm(i), src.Elem(i)); stop {
				return c, err
			}
		}
	case ast.Object:
		for _, k := range src.Keys() {
			if c, stop, err := m.step(f, s, k, src.Get(k)); stop {
				return c, err
			}
		}
	case ast.Set:
		for _, k := range src.Slice() {
			if c, stop, err := m.step(f, s, k, k); stop {
				return c, err
			}
		}
	}
	return ctlDone, nil
}

// step runs a scan's body for one element, and says whether the scan
// stops, with what.
func (m *machine) step(f *frame, s *stmt, k, v *ast.Term) (int, bool, error) {
	m.steps++
	if m.steps&1023 == 0 {
		if err := m.bctx.Context.Err(); err != nil {
			return 0, true, err
		}
	}
	f.l[s.key], f.l[s.value] = k, v
	c, err := m.run(f, s.blocks[0])
	switch {
	case err != nil || c == ctlReturn:
		return c, true, err
	case c == ctlDone || c == 0: // next element
		return 0, false, nil
	case c == 1: // leave the scan
		return ctlDone, true, nil
	default:
		return c - 2, true, nil
	}
}

// with runs its block with a local (input or data) replaced, or upserted
// at a path, and memoization set aside meanwhile.
func (m *machine) with(f *frame, s *stmt) (int, error) {
	saved, savedMemo := f.l[s.target], m.memo
	v := f.get(s.a)
	if len(s.path) > 0 {
		v = upsert(saved, s.path, v)
	}
	f.l[s.target] = v
	m.memo = make([]*ast.Term, len(savedMemo))
	c, err := m.run(f, s.blocks[0])
	f.l[s.target], m.memo = saved, savedMemo
	switch {
	case err != nil || c == ctlReturn:
		return c, err
	case c == ctlDone:
		return ctlDone, nil
	case c == 0: // the block is undefined: so is the with statement
		return 0, nil
	default:
		return c - 1, nil
	}
}

// upsert returns a copy of doc (an object, or nothing) with value at path.
func upsert(doc *ast.Term, path []*ast.Term, value *ast.Term) *ast.Term {
	var obj ast.Object
	if doc != nil {
		if o, ok := doc.Value.(ast.Object); ok {
			obj = o.Copy()
		}
	}
	if obj == nil {
		obj = ast.NewObject()
	}
	if len(path) == 1 {
		obj.Insert(path[0], value)
	} else {
		obj.Insert(path[0], upsert(obj.Get(path[0]), path[1:], value))
	}
	return ast.NewTerm(obj)
}

func (m *machine) call(fn *function, caller *frame, args []operand) (*ast.Term, error) {
	if fn.memo >= 0 {
		if v := m.memo[fn.memo]; v != nil {
			return v, nil
		}
	}
	f := m.push(fn.nlocals)
	defer m.pop(f)
	for i, p := range fn.params {
		f.l[p] = caller.get(args[i])
	}
	for _, b := range fn.blocks {
		c, err := m.run(f, b)
		if err != nil {
			return nil, err
		}
		if c == ctlReturn {
			if fn.memo >= 0 && f.ret != nil {
				m.memo[fn.memo] = f.ret
			}
			return f.ret, nil
		}
		if c > 0 {
			break
		}
	}
	return nil, nil
}

func (m *machine) builtin(s *stmt, f *frame) (*ast.Term, error) {
	args := m.args[:0]
	for _, a := range s.args {
		args = append(args, f.get(a))
	}
	m.args = args
	m.out = nil
	m.bctx.Location = nil
	err := s.builtin.fn(m.bctx, args, m.iterFn)
	if err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, halt.Err
		}
		// As topdown: the call is undefined, and with strict built-in
		// errors the evaluation fails at its end.
		if m.err == nil {
			m.err = builtinError(s, err)
		}
		return nil, nil
	}
	if s.builtin.decl.Decl.Result() == nil {
		return ast.InternedTerm(true), nil
	}
	return m.out, nil
}

func (m *machine) iter(t *ast.Term) error {
	if m.out == nil {
		m.out = t
	}
	return nil
}

func builtinError(s *stmt, err error) error {
	var te *topdown.Error
	if errors.As(err, &te) {
		return err
	}
	return &topdown.Error{Code: topdown.BuiltinErr, Message: fmt.Sprintf("%v: %v", s.builtin.name, err)}
}

// dot looks a key up in a composite value: an object's key, an array's
// index, a set's element. Undefined (nil) otherwise.
func dot(src, key *ast.Term) *ast.Term {
	switch v := src.Value.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		return v.Get(key)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

// equal reports whether two values are equal, as ast.Compare(a, b) == 0
// does: the same term, and two strings or two booleans, are decided
// without ast.Compare's ordering of types.
func equal(a, b *ast.Term) bool {
	if a == b {
		return true
	}
	switch x := a.Value.(type) {
	case ast.String:
		y, ok := b.Value.(ast.String)
		return ok && x == y
	case ast.Boolean:
		y, ok := b.Value.(ast.Boolean)
		return ok && x == y
	}
	return ast.Compare(a.Value, b.Value) == 0
}

// length is the number of elements of a composite value, or of
// characters of a string.
func length(t *ast.Term) (int, bool) {
	switch v := t.Value.(type) {
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case ast.String:
		return len([]rune(string(v))), true
	}
	return 0, false
}
