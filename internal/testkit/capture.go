package testkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// CaptureReadBuffer is the SO_RCVBUF Capture asks for. Linux caps it at
// net.core.rmem_max (4 MiB here) unless the process may raise it.
const CaptureReadBuffer = 8 << 20

// Datagram is one UDP datagram a Capture received.
type Datagram struct {
	// Time is when the datagram was read.
	Time time.Time
	// From is the sender's address.
	From netip.AddrPort
	// Data is a private copy of the payload.
	Data []byte
}

// Capture records every UDP datagram sent to a 127.0.0.1 port.
type Capture struct {
	conn    *net.UDPConn
	addr    netip.AddrPort
	rcvbuf  int
	done    chan struct{}
	mu      sync.Mutex
	dgrams  []Datagram
	last    time.Time
	readErr error
	once    sync.Once
}

// NewCapture listens on addr (a 127.0.0.1 address; port 0 picks a free one)
// and records datagrams until Close or until ctx is done.
func NewCapture(ctx context.Context, addr string) (*Capture, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("testkit: capture address %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("testkit: capture address %q is not loopback", addr)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("testkit: capture listen: %w", err)
	}
	if err := conn.SetReadBuffer(CaptureReadBuffer); err != nil {
		conn.Close()
		return nil, fmt.Errorf("testkit: capture SO_RCVBUF: %w", err)
	}
	c := &Capture{
		conn: conn,
		addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		done: make(chan struct{}),
	}
	c.rcvbuf = socketRcvbuf(conn)
	go c.loop()
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-c.done:
		}
	}()
	return c, nil
}

// socketRcvbuf returns the SO_RCVBUF the kernel granted (Linux reports twice
// the requested value), or 0 when it cannot be read.
func socketRcvbuf(conn *net.UDPConn) int {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	var v int
	_ = raw.Control(func(fd uintptr) {
		v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return v
}

func (c *Capture) loop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.mu.Lock()
				c.readErr = err
				c.mu.Unlock()
			}
			return
		}
		now := time.Now()
		d := Datagram{Time: now, From: from, Data: append([]byte(nil), buf[:n]...)}
		c.mu.Lock()
		c.dgrams = append(c.dgrams, d)
		c.last = now
		c.mu.Unlock()
	}
}

// Addr returns the address the capture listens on, as "127.0.0.1:port".
func (c *Capture) Addr() string { return c.addr.String() }

// AddrPort returns the address the capture listens on.
func (c *Capture) AddrPort() netip.AddrPort { return c.addr }

// ReadBuffer returns the socket receive buffer the kernel granted in bytes.
func (c *Capture) ReadBuffer() int { return c.rcvbuf }

// Datagrams returns the datagrams received so far, in arrival order. The
// slice is a copy; the payloads are shared and must not be modified.
func (c *Capture) Datagrams() []Datagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Datagram(nil), c.dgrams...)
}

// Len returns the number of datagrams received so far.
func (c *Capture) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.dgrams)
}

// WaitQuiet waits until at least min datagrams arrived and none arrived for
// quiet, then returns nil; or returns ctx's error wrapped.
func (c *Capture) WaitQuiet(ctx context.Context, min int, quiet time.Duration) error {
	start := time.Now()
	tick := time.NewTicker(quiet / 4)
	defer tick.Stop()
	for {
		c.mu.Lock()
		n, last, rerr := len(c.dgrams), c.last, c.readErr
		c.mu.Unlock()
		if rerr != nil {
			return fmt.Errorf("testkit: capture read: %w", rerr)
		}
		if last.IsZero() {
			last = start
		}
		if n >= min && time.Since(last) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testkit: capture waiting for %d datagrams (have %d): %w", min, n, ctx.Err())
		case <-c.done:
			if n >= min {
				return nil
			}
			return fmt.Errorf("testkit: capture closed with %d of %d datagrams", n, min)
		case <-tick.C:
		}
	}
}

// Close stops the capture; the datagrams stay readable.
func (c *Capture) Close() error {
	var err error
	c.once.Do(func() {
		err = c.conn.Close()
		<-c.done
	})
	if err != nil {
		return fmt.Errorf("testkit: capture close: %w", err)
	}
	return nil
}

// WritePcap writes the datagrams as an Ethernet/IPv4/UDP pcap from their
// sender to the capture's address, for tshark, e.g.
// `tshark -r f.pcap -d udp.port==PORT,cflow -V`.
func (c *Capture) WritePcap(path string) error {
	return WriteDatagramsPcap(path, c.addr, c.Datagrams())
}

// WriteDatagramsPcap writes dgrams as an Ethernet/IPv4/UDP pcap addressed to
// dst. Senders that are not IPv4 are written as 127.0.0.1.
func WriteDatagramsPcap(path string, dst netip.AddrPort, dgrams []Datagram) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("testkit: create pcap: %w", err)
	}
	pw, err := NewPcapWriter(f)
	if err != nil {
		f.Close()
		return err
	}
	var frame []byte
	for i, d := range dgrams {
		if len(d.Data) > 65535-28 {
			f.Close()
			return fmt.Errorf("testkit: datagram %d too large for IPv4 (%d bytes)", i, len(d.Data))
		}
		frame = udpFrame(frame[:0], d.From, dst, uint16(i), d.Data)
		if err := pw.WritePacket(d.Time, frame); err != nil {
			f.Close()
			return err
		}
	}
	if err := pw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("testkit: close pcap: %w", err)
	}
	return nil
}

func udpFrame(b []byte, src, dst netip.AddrPort, id uint16, payload []byte) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.Is4() {
		s = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if !d.Is4() {
		d = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+8+len(payload)))
	b = binary.BigEndian.AppendUint16(b, id)
	b = append(b, 0x40, 0, 64, ProtoUDP, 0, 0)
	s4, d4 := s.As4(), d.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+20], 0))
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0) // UDP checksum optional over IPv4
	return append(b, payload...)
}

// Replay sends the captured datagrams, in order, from a new socket to target
// (a 127.0.0.1 address), pausing gap between datagrams.
func Replay(ctx context.Context, target string, dgrams []Datagram, gap time.Duration) error {
	if err := checkTarget(target); err != nil {
		return err
	}
	ap := netip.MustParseAddrPort(target)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return fmt.Errorf("testkit: replay dial: %w", err)
	}
	defer conn.Close()
	for i, d := range dgrams {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("testkit: replay: %w", err)
		}
		if _, err := conn.Write(d.Data); err != nil {
			return fmt.Errorf("testkit: replay datagram %d: %w", i, err)
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return nil
}
