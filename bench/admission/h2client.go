package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is the loader's HTTP/2 client: one TLS connection on which the
// dispatcher itself writes each request's frames when its time comes,
// and one goroutine reads the responses.
//
// The loader shares the machine's two CPUs with the server it measures,
// so what it spends per request is taken from the server. net/http's
// client spent 0.30–0.49 ms of CPU per request here over a run (a
// goroutine per request in flight, handoffs between it, the connection's
// read loop and the writer, each a futex wake on another thread), about
// as much as the no-op server's 0.34–0.37 ms. This client writes a
// request with one flush from the dispatcher's thread and reads
// responses in one loop, with no goroutine per request: 0.15–0.20 ms,
// most of it the two syscalls (2026-12-02, 1,000 and 2,000 req/s).
//
// It speaks as much HTTP/2 as a load generator needs: the server's
// SETTINGS (stream limit, windows, frame size), connection flow control
// both ways, PING, RST_STREAM and GOAWAY. Requests over the server's
// stream limit wait in order for a stream to end; their wait counts as
// latency, as it would in any client.
type h2Conn struct {
	tc        *tls.Conn
	authority string
	path      string
	// done receives every request's outcome, on the reader goroutine.
	done func(req int, status int, body []byte, err error)

	mu         sync.Mutex
	bw         *bufio.Writer
	fw         *http2.Framer // writes, under mu
	henc       *hpack.Encoder
	hbuf       bytes.Buffer
	nextID     uint32
	streams    map[uint32]*h2Stream
	pending    []h2Request // over the stream limit or the window, in order
	maxStreams int
	maxFrame   int
	sendWindow int64 // connection-level credit for request bodies
	// streamWindow is the server's initial window for each stream: a
	// body larger than it would need WINDOW_UPDATEs this client does not
	// wait for, and is refused.
	streamWindow int64
	recvUnacked  int64 // response bytes not yet given back to the server
	err          error // sticky: the connection failed
}

type h2Request struct {
	req  int
	body []byte
}

type h2Stream struct {
	req    int
	status int
	body   []byte
}

// errNotH2: the server did not negotiate HTTP/2.
var errNotH2 = errors.New("the server does not speak HTTP/2 over TLS")

// Flow control: this client gives the server a large receive window and
// returns it in large steps, so that responses never wait for it.
const (
	h2StreamRecvWindow = 1 << 20
	h2ConnRecvWindow   = 1 << 30
)

// dialH2 connects to rawURL (https) with ALPN h2, and returns once the
// server's first SETTINGS frame is read.
func dialH2(rawURL string, cfg *tls.Config, done func(req, status int, body []byte, err error)) (*h2Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{http2.NextProtoTLS, "http/1.1"} // a server without h2 picks HTTP/1.1
	tc, err := tls.Dial("tcp", u.Host, cfg)
	if err != nil {
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		tc.Close()
		return nil, fmt.Errorf("%s: %w (ALPN %q)", u.Host, errNotH2, p)
	}
	c := &h2Conn{
		tc: tc, authority: u.Host, path: u.RequestURI(), done: done,
		bw: bufio.NewWriterSize(tc, 64<<10), nextID: 1, streams: map[uint32]*h2Stream{},
		// The protocol's defaults until the server's SETTINGS say otherwise.
		maxStreams: 100, maxFrame: 16384, sendWindow: 65535, streamWindow: 65535,
	}
	c.fw = http2.NewFramer(c.bw, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		tc.Close()
		return nil, err
	}
	err = errors.Join(
		c.fw.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamRecvWindow}),
		c.fw.WriteWindowUpdate(0, h2ConnRecvWindow-65535),
		c.bw.Flush())
	if err != nil {
		tc.Close()
		return nil, err
	}
	settled := make(chan struct{})
	go c.read(settled)
	<-settled
	c.mu.Lock()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		tc.Close()
		return nil, err
	}
	return c, nil
}

// send writes request req now, or queues it behind the server's stream
// limit or the connection's window.
func (c *h2Conn) send(req int, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		c.done(req, 0, nil, c.err)
		return
	}
	c.pending = append(c.pending, h2Request{req, body})
	c.writePending()
}

// writePending writes the waiting requests that the stream limit and
// the window allow, oldest first, with one flush. Called with mu held.
func (c *h2Conn) writePending() {
	n := 0
	for ; n < len(c.pending); n++ {
		r := c.pending[n]
		if len(c.streams) >= c.maxStreams || int64(len(r.body)) > c.sendWindow {
			break
		}
		if err := c.writeRequest(r); err != nil {
			c.fail(err)
			return
		}
	}
	c.pending = c.pending[n:]
	if n > 0 {
		if err := c.bw.Flush(); err != nil {
			c.fail(err)
		}
	}
}

func (c *h2Conn) writeRequest(r h2Request) error {
	if int64(len(r.body)) > c.streamWindow {
		return fmt.Errorf("request body of %d bytes is over the server's stream window (%d)", len(r.body), c.streamWindow)
	}
	id := c.nextID
	c.nextID += 2
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", c.authority}, {":path", c.path},
		{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(r.body))}} {
		if err := c.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return err
		}
	}
	if err := c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	for rest := r.body; ; {
		chunk := rest[:min(len(rest), c.maxFrame)]
		rest = rest[len(chunk):]
		if err := c.fw.WriteData(id, len(rest) == 0, chunk); err != nil {
			return err
		}
		if len(rest) == 0 {
			break
		}
	}
	c.sendWindow -= int64(len(r.body))
	c.streams[id] = &h2Stream{req: r.req}
	return nil
}

// fail ends the connection: every request in flight or waiting fails
// with err, and so does every later one. Called with mu held.
func (c *h2Conn) fail(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	for id, s := range c.streams {
		delete(c.streams, id)
		c.done(s.req, 0, nil, err)
	}
	for _, r := range c.pending {
		c.done(r.req, 0, nil, err)
	}
	c.pending = nil
	c.tc.Close()
}

// close ends the connection; requests still in flight fail.
func (c *h2Conn) close() {
	c.mu.Lock()
	c.fail(errors.New("connection closed by the loader"))
	c.mu.Unlock()
}

// read is the connection's reader: it closes settled after the server's
// first SETTINGS frame (or the connection's failure), and completes
// requests as their responses end.
func (c *h2Conn) read(settled chan struct{}) {
	fr := http2.NewFramer(nil, bufio.NewReaderSize(c.tc, 64<<10))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 20
	first := true
	settle := func() {
		if first {
			first = false
			close(settled)
		}
	}
	defer settle()
	for {
		f, err := fr.ReadFrame()
		c.mu.Lock()
		if err == nil {
			err = c.handle(f, settle)
		}
		if err != nil {
			c.fail(err)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// handle acts on one frame from the server. Called with mu held.
func (c *h2Conn) handle(f http2.Frame, settle func()) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		err := f.ForeachSetting(func(s http2.Setting) error {
			switch s.ID {
			case http2.SettingMaxConcurrentStreams:
				c.maxStreams = int(s.Val)
			case http2.SettingInitialWindowSize:
				c.streamWindow = int64(s.Val)
			case http2.SettingMaxFrameSize:
				c.maxFrame = int(s.Val)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := errors.Join(c.fw.WriteSettingsAck(), c.bw.Flush()); err != nil {
			return err
		}
		settle()
		c.writePending()
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			c.sendWindow += int64(f.Increment)
			c.writePending()
		}
	case *http2.MetaHeadersFrame:
		s := c.streams[f.StreamID]
		if s == nil {
			return nil
		}
		s.status, _ = strconv.Atoi(f.PseudoValue("status"))
		if f.StreamEnded() {
			c.finish(f.StreamID, s, nil)
		}
	case *http2.DataFrame:
		if n := int64(f.Length); n > 0 {
			if c.recvUnacked += n; c.recvUnacked >= h2ConnRecvWindow/2 {
				if err := errors.Join(c.fw.WriteWindowUpdate(0, uint32(c.recvUnacked)), c.bw.Flush()); err != nil {
					return err
				}
				c.recvUnacked = 0
			}
		}
		s := c.streams[f.StreamID]
		if s == nil {
			return nil
		}
		s.body = append(s.body, f.Data()...) // the framer reuses its buffer
		if f.StreamEnded() {
			c.finish(f.StreamID, s, nil)
		}
	case *http2.RSTStreamFrame:
		if s := c.streams[f.StreamID]; s != nil {
			c.finish(f.StreamID, s, fmt.Errorf("stream reset by the server: %v", f.ErrCode))
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			return errors.Join(c.fw.WritePing(true, f.Data), c.bw.Flush())
		}
	case *http2.GoAwayFrame:
		return fmt.Errorf("GOAWAY from the server: %v", f.ErrCode)
	}
	return nil
}

// finish completes a stream and lets a waiting request take its place.
// Called with mu held.
func (c *h2Conn) finish(id uint32, s *h2Stream, err error) {
	delete(c.streams, id)
	c.done(s.req, s.status, s.body, err)
	c.writePending()
}
