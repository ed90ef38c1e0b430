package agent

import (
	"encoding/json"
	"io"
	"sync"
	"time"
	"unicode/utf8"
)

// lineWriter writes the alert and event streams' Lines as JSON lines from
// several goroutines. It encodes a Line by hand, byte for byte as
// encoding/json's Encoder does (HTML-safe escapes, a newline after each):
// reflection cost more than the rest of an alerting event's handling.
// One Write per line, as the Encoder does.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (l *lineWriter) write(line *Line) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := appendLine(l.buf[:0], line)
	if !ok {
		var err error
		if b, err = json.Marshal(line); err != nil {
			return err
		}
		b = append(b, '\n')
	}
	l.buf = b
	_, err := l.w.Write(b)
	return err
}

// appendLine appends line's JSON and a newline to b; false when its time
// is one encoding/json would refuse (a year outside 0–9999), for the
// caller to let encoding/json report it.
func appendLine(b []byte, l *Line) ([]byte, bool) {
	if y := l.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = l.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range [...]struct{ name, v string }{
		{`,"node":`, l.Node}, {`,"namespace":`, l.Namespace}, {`,"pod":`, l.Pod}, {`,"container":`, l.Container},
		{`,"image":`, l.Image}, {`,"operation":`, l.Operation}, {`,"path":`, l.Path}, {`,"process":`, l.Process},
		{`,"ruleset":`, l.Ruleset},
	} {
		b = append(b, f.name...)
		b = appendString(b, f.v)
	}
	b = append(b, `,"actions":`...)
	if l.Actions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range l.Actions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	b = append(b, `,"stream":`...)
	b = appendString(b, l.Stream)
	return append(b, "}\n"...), true
}

// appendString appends s as a JSON string with encoding/json's escapes:
// ", \ and the control characters, <, > and & (HTML-safe), U+2028 and
// U+2029, and invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonSafe tells the ASCII bytes a JSON string holds as they are (HTML-safe,
// as encoding/json writes them).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
