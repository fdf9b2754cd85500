// Package intake owns the UDP sockets: it binds each listen address with
// several SO_REUSEPORT sockets (one reader goroutine each, so every core
// decodes), applies the exporter allowlist, decodes each datagram with a
// per-socket decode.Decoder and hands the records to the core.
//
// The kernel spreads exporters over a port's sockets by their address and
// port, so an exporter's datagrams usually reach the same socket; the
// decoders share their per-exporter state (templates, samplers, sequence
// numbers) so that one that moves (a restart on a new source port) keeps it.
// A per-exporter lock serialises an exporter's datagrams and is uncontended
// in the usual case.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowmetrics/flowmetrics/processor/core"
	"github.com/flowmetrics/flowmetrics/processor/flow"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// Config configures the sockets.
type Config struct {
	// Listen lists UDP addresses (host:port). Every protocol is accepted on
	// every address; the version field of each datagram decides.
	Listen []string
	// Sockets is the number of SO_REUSEPORT sockets (and reader goroutines)
	// per address; 0 means one per CPU.
	Sockets int
	// ReceiveBuffer is the requested socket receive buffer in bytes; 0
	// leaves the system default.
	ReceiveBuffer int
	// AllowedExporters, when not empty, is the list of networks datagrams
	// are accepted from; others are dropped and counted.
	AllowedExporters []netip.Prefix
	// Limits bound each decoder's state.
	Limits decode.Limits
}

// Intake is the running set of sockets.
type Intake struct {
	cfg     Config
	perAddr int // sockets per address: cfg.Sockets, or one per CPU
	core    *core.Core
	log     *slog.Logger
	latency *health.Histogram
	allow   atomic.Pointer[[]netip.Prefix]

	mu      sync.Mutex
	sockets []*socket
	final   []SocketStats // the sockets' figures when Stop closed them
	wg      sync.WaitGroup
}

// socket is one bound UDP socket and its reader.
type socket struct {
	addr    string
	conn    *net.UDPConn
	inode   uint64
	port    int
	rcvbuf  int
	dec     *decode.Decoder
	limiter logLimiter
	br      *batchReader // recvmmsg on conn

	// The datagrams decoded but not yet folded into the core: all from
	// pendingEx, read in one batch (see flush).
	pendingEx   *health.Exporter
	pendingAddr netip.Addr
	received    time.Time // when the pending datagrams' receive batch returned
	datagrams   int       // pending datagrams

	// pause waits between failed receive calls (time.Sleep; tests record
	// the waits instead).
	pause func(time.Duration)
}

// maxPending is the most records a socket decodes before folding them into
// the core, so that a batch of large datagrams does not hold many.
const maxPending = 1024

// SocketStats are one socket's figures.
type SocketStats struct {
	// Address is the configured listen address.
	Address string
	// Index numbers the sockets of one address.
	Index int
	// ReceiveBuffer is the effective receive buffer size in bytes.
	ReceiveBuffer int
	// Drops is the kernel's count of datagrams dropped on this socket.
	Drops uint64
}

// New prepares an Intake; Start binds the sockets.
func New(cfg Config, c *core.Core, log *slog.Logger) *Intake {
	in := &Intake{cfg: cfg, perAddr: cfg.Sockets, core: c, log: log, latency: &health.Histogram{}}
	if in.perAddr <= 0 {
		in.perAddr = runtime.GOMAXPROCS(0)
	}
	in.SetAllowed(cfg.AllowedExporters)
	return in
}

// SetAllowed replaces the exporter allowlist of the running intake; empty
// accepts every exporter.
func (in *Intake) SetAllowed(p []netip.Prefix) {
	p = append([]netip.Prefix(nil), p...)
	in.allow.Store(&p)
}

// Config returns the configuration the intake was built with, as given
// (Sockets 0 stays 0), so that it compares equal to the same configuration
// on reload.
func (in *Intake) Config() Config { return in.cfg }

// Latency returns the per-datagram processing time histogram.
func (in *Intake) Latency() *health.Histogram { return in.latency }

// Start binds every socket and starts the readers. On error nothing is left
// bound. It fails if another socket (another flowmetrics, or another
// Collector receiver) is bound to one of the ports: SO_REUSEPORT would
// otherwise let both bind and split the exporters between them.
func (in *Intake) Start() error { return in.StartReplacing(nil) }

// StartReplacing is Start for an intake that is to replace old, which may
// still be running on the same ports (a reload binds the new sockets before
// closing the old ones, so no datagram is lost): old's sockets do not count
// as another's.
func (in *Intake) StartReplacing(old *Intake) error {
	socks, err := in.bind(old)
	if err != nil {
		return err
	}
	if old != nil {
		// From here on the new decoders' limits are the exporters'.
		old.retireDecoders()
	}
	smallest := 0
	index := map[string]int{} // socket numbers per address, as in Stats
	for _, s := range socks {
		in.log.Info("listening for flows", "address", s.conn.LocalAddr().String(), "socket", index[s.addr], "receive_buffer_bytes", s.rcvbuf)
		index[s.addr]++
		if smallest == 0 || s.rcvbuf < smallest {
			smallest = s.rcvbuf
		}
		in.wg.Add(1)
		go in.read(s)
	}
	if bufferCapped(in.cfg.ReceiveBuffer, smallest) {
		in.log.Warn("the kernel capped the socket receive buffers below receive_buffer_bytes: a burst the configured size would absorb is dropped (flowmetrics_socket_drops_total); raise net.core.rmem_max or give the process CAP_NET_ADMIN",
			"receive_buffer_bytes", in.cfg.ReceiveBuffer, "granted_bytes", smallest/2)
	}
	return nil
}

// retireDecoders marks the decoders of in's sockets as replaced
// (decode.Decoder.Retire).
func (in *Intake) retireDecoders() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.sockets {
		s.dec.Retire()
	}
}

// bufferCapped reports whether a socket asked for a receive buffer of
// requested bytes got less: Linux reports twice the size it grants (the
// other half is its bookkeeping), and grants at most net.core.rmem_max
// without CAP_NET_ADMIN.
func bufferCapped(requested, effective int) bool {
	return requested > 0 && effective > 0 && effective < 2*requested
}

// bind binds every socket (in.sockets) without starting their readers and
// checks that no socket but its own and old's shares their ports. On error
// nothing is left bound.
func (in *Intake) bind(old *Intake) ([]*socket, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	var socks []*socket
	fail := func(err error) ([]*socket, error) {
		for _, s := range socks {
			s.conn.Close()
		}
		return nil, err
	}
	mine := map[uint64]bool{}
	if old != nil {
		old.mu.Lock()
		for _, s := range old.sockets {
			mine[s.inode] = true
		}
		old.mu.Unlock()
	}
	for _, addr := range in.cfg.Listen {
		bindAddr := addr
		for i := 0; i < in.perAddr; i++ {
			pc, err := lc.ListenPacket(context.Background(), "udp", bindAddr)
			if err != nil {
				return fail(fmt.Errorf("listen on %s: %w", addr, err))
			}
			s := &socket{addr: addr, conn: pc.(*net.UDPConn), dec: decode.New(in.cfg.Limits)}
			s.setup(in.cfg.ReceiveBuffer)
			if s.br, err = newBatchReader(s.conn, batchSize, maxDatagram); err != nil {
				pc.Close()
				return fail(fmt.Errorf("listen on %s: %w", addr, err))
			}
			socks = append(socks, s)
			mine[s.inode] = true
			// With port 0 the first socket picks the port; the others join it.
			bindAddr = pc.LocalAddr().String()
		}
		if err := checkPortShared(socks[len(socks)-1].conn.LocalAddr().(*net.UDPAddr), mine); err != nil {
			return fail(fmt.Errorf("listen on %s: %w", addr, err))
		}
	}
	in.mu.Lock()
	in.sockets = socks
	in.mu.Unlock()
	return socks, nil
}

// Addrs returns the bound local addresses, one per configured address (useful
// when a port was 0).
func (in *Intake) Addrs() []net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []net.Addr
	seen := map[string]bool{}
	for _, s := range in.sockets {
		if !seen[s.addr] {
			seen[s.addr] = true
			out = append(out, s.conn.LocalAddr())
		}
	}
	return out
}

// setup sizes the receive buffer (SO_RCVBUFFORCE when privileged, else
// SO_RCVBUF, capped by net.core.rmem_max) and records the socket's inode for
// drop accounting.
func (s *socket) setup(size int) {
	s.port = s.conn.LocalAddr().(*net.UDPAddr).Port
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if size > 0 {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
			}
		}
		s.rcvbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil {
			s.inode = st.Ino
		}
	})
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// batchSize is how many datagrams one recvmmsg call may return. 64 rather
// than 16: at saturation end to end, alternated with 16, 15 of 19 sFlow
// pairs (2 ties) and 8 of 10 v5 and IPFIX pairs cost less CPU per record
// (about 4 %; presumably a quarter of the calls, each taking the socket's
// queue lock, which the sender's enqueues contend for: BenchmarkIntake,
// which reads a filled socket alone, sees no difference). The buffers are
// 64 KiB each, but a page is resident only once a datagram lands in it
// (peak RSS +0.3-1 MB in those runs).
const batchSize = 64

// read receives datagrams in batches (recvmmsg: one system call and one
// wake-up for up to batchSize datagrams under load) and handles each. A
// receive error is retried at once; one that persists is logged at the
// rate limit, not once per call.
//
// A failed receive call is retried at once; when it fails again the reader
// waits between calls, from 1 ms doubling up to maxReadBackoff, so that an
// error that persists does not keep a core busy. A call that succeeds
// ends the waits.
func (in *Intake) read(s *socket) {
	defer in.wg.Done()
	pause := s.pause
	if pause == nil {
		pause = time.Sleep
	}
	var backoff time.Duration
	for {
		if _, err := in.readBatch(s); err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				return
			}
			s.limiter.log(in.log, "read_error", "reading datagrams", "address", s.addr, "err", err)
			if backoff > 0 {
				pause(backoff)
			}
			backoff = min(max(2*backoff, time.Millisecond), maxReadBackoff)
			continue
		}
		backoff = 0
	}
}

// maxReadBackoff is the longest wait between failed receive calls: short
// beside drainTime, so that Stop still finds the reader.
const maxReadBackoff = 50 * time.Millisecond

// readBatch waits for one batch of datagrams on s, handles each and folds
// their records into the core; it returns how many datagrams it read.
func (in *Intake) readBatch(s *socket) (int, error) {
	n, err := s.br.read()
	now := time.Now() // one clock read per batch, not per datagram
	if err != nil {
		return 0, err
	}
	// Source by source: when exporters' datagrams interleave in the queue,
	// one core.Process per exporter and batch rather than one per datagram
	// (BenchmarkIntake/*/interleaved).
	s.br.bySource(func(b []byte, addr netip.Addr) { in.handle(s, b, addr, now) })
	in.flush(s)
	return n, nil
}

// handle decodes one datagram from addr. Its records are folded into the
// core together with those of the datagrams before it in the same batch from
// the same exporter (one core.Process per exporter and batch rather than
// per datagram: 10-17 % less CPU per sFlow sample under load), by flush.
//
// now is when the batch holding the datagram was received.
func (in *Intake) handle(s *socket, b []byte, addr netip.Addr, now time.Time) {
	exps := in.core.Exporters()
	if !in.allowed(addr) {
		exps.Untracked().CountError(health.ReasonNotAllowed)
		s.limiter.log(in.log, "not_allowed", "datagram from an exporter outside allowed_exporters", "exporter", addr)
		return
	}
	// Flush before looking the exporter up: the lookup may evict the
	// pending exporter's health entry from the bounded table.
	if s.pendingEx != nil && (s.pendingAddr != addr || len(s.dec.Pending()) >= maxPending) {
		in.flush(s)
	}
	ex, forgot := exps.Track(addr)
	if forgot.IsValid() {
		s.limiter.log(in.log, "exporter_evicted", "too many exporters: forgot one (the least recently seen of those that sent only once, if any) to track a new one; raise max_exporters if they are all real, to at least 4/3 of the real exporters (a flood of spoofed sources looks like this too)",
			"exporter", addr, "forgotten", forgot, "max_exporters", exps.Capacity(), "evicted_total", exps.Evicted())
	}
	if s.pendingEx != nil && s.pendingEx != ex {
		in.flush(s) // the same address, but its entry was replaced meanwhile
	}
	res, errs := s.dec.Append(b, addr, ex)
	ex.CountDatagram(res.Protocol, now.UnixNano())
	for _, e := range errs {
		var de *decode.Error
		reason := "malformed"
		if errors.As(e, &de) {
			reason = de.Reason.String()
		}
		s.limiter.log(in.log, reason, "bad datagram", "exporter", addr, "reason", reason, "err", e)
	}
	s.pendingEx, s.pendingAddr = ex, addr
	s.received = now
	s.datagrams++
}

// flush folds the pending records into the core and observes each pending
// datagram's processing time (from its receipt to its records counted).
func (in *Intake) flush(s *socket) {
	if s.pendingEx == nil {
		return
	}
	in.core.Process(s.pendingEx, s.dec.Pending(), s.received)
	in.latency.ObserveN(time.Since(s.received).Nanoseconds(), uint64(s.datagrams))
	s.dec.Reset()
	s.pendingEx, s.datagrams = nil, 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (in *Intake) allowed(a netip.Addr) bool {
	allow := *in.allow.Load()
	if len(allow) == 0 {
		return true
	}
	return flow.InPrefixes(allow, a) // the zone is not part of the match
}

// drainTime is how long Stop keeps reading datagrams already queued.
const drainTime = 200 * time.Millisecond

// Stop drains datagrams already queued in the sockets (briefly), closes them
// and waits for the readers to exit.
func (in *Intake) Stop() {
	in.mu.Lock()
	socks := in.sockets
	in.sockets = nil
	in.mu.Unlock()
	deadline := time.Now().Add(drainTime)
	for _, s := range socks {
		_ = s.conn.SetReadDeadline(deadline)
	}
	in.wg.Wait()
	// The sockets' last figures, for a final report after Stop (Stats).
	final := statsOf(socks)
	for _, s := range socks {
		s.conn.Close()
	}
	in.mu.Lock()
	in.final = final
	in.mu.Unlock()
}

// Stats returns every socket's figures, including kernel drop counts.
// After Stop it returns their figures as they were when they closed.
func (in *Intake) Stats() []SocketStats {
	in.mu.Lock()
	socks := append([]*socket(nil), in.sockets...)
	final := in.final
	in.mu.Unlock()
	if len(socks) == 0 && final != nil {
		return append([]SocketStats(nil), final...)
	}
	return statsOf(socks)
}

// statsOf reads the figures of socks.
func statsOf(socks []*socket) []SocketStats {
	drops := readDrops()
	out := make([]SocketStats, 0, len(socks))
	idx := map[string]int{}
	for _, s := range socks {
		out = append(out, SocketStats{Address: s.addr, Index: idx[s.addr], ReceiveBuffer: s.rcvbuf, Drops: drops[s.inode]})
		idx[s.addr]++
	}
	return out
}
