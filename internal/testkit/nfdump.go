package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errNoRecords is returned by ReadNfdump when nfdump printed nothing.
var errNoRecords = errors.New("testkit: nfdump printed no records")

// Nfcapd is a running nfcapd collector writing into a directory.
type Nfcapd struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	out  *SyncBuffer
	done chan struct{}
	err  error
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a child
// process's output, a logger used by several goroutines) and readers (the
// test).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("testkit: find free port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// StartNfcapd starts `nfcapd -w dir -p PORT -b 127.0.0.1` on a free port and
// returns once nfcapd has bound it. ctx bounds nfcapd's whole life: when it
// ends nfcapd is killed. Call Stop to make nfcapd write its file and exit.
// A port taken by someone else between choosing and binding it is retried.
func StartNfcapd(ctx context.Context, dir string) (*Nfcapd, error) {
	var err error
	for range 5 {
		var n *Nfcapd
		n, err = startNfcapd(ctx, dir)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, err
}

var errPortInUse = errors.New("testkit: nfcapd port in use")

func startNfcapd(ctx context.Context, dir string) (*Nfcapd, error) {
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	n := &Nfcapd{
		addr: fmt.Sprintf("127.0.0.1:%d", port),
		dir:  dir,
		out:  &SyncBuffer{},
		done: make(chan struct{}),
	}
	// -B sets the socket buffer; the kernel caps it at rmem_max.
	n.cmd = exec.CommandContext(ctx, "nfcapd", "-w", dir, "-p", strconv.Itoa(port), "-b", "127.0.0.1", "-B", strconv.Itoa(CaptureReadBuffer))
	n.cmd.Stdout = n.out
	n.cmd.Stderr = n.out
	n.cmd.WaitDelay = 2 * time.Second
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testkit: start nfcapd: %w", err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	exited := func() error {
		if strings.Contains(n.out.String(), "Address already in use") {
			return errPortInUse
		}
		return fmt.Errorf("testkit: nfcapd exited early: %w (output:\n%s)", n.err, tail(n.out.String()))
	}
	// nfcapd is ready when the port can no longer be bound and nfcapd is
	// still running a moment later (the port may be someone else's).
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			select {
			case <-n.done:
				return nil, exited()
			case <-time.After(100 * time.Millisecond):
				return n, nil
			}
		}
		c.Close()
		select {
		case <-n.done:
			return nil, exited()
		case <-ctx.Done():
			return nil, fmt.Errorf("testkit: waiting for nfcapd: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr returns the "127.0.0.1:port" nfcapd listens on.
func (n *Nfcapd) Addr() string { return n.addr }

// Stop sends SIGTERM, which makes nfcapd write its current file, and waits
// for it to exit.
func (n *Nfcapd) Stop() error {
	select {
	case <-n.done:
	default:
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return fmt.Errorf("testkit: signal nfcapd: %w", err)
		}
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
			return fmt.Errorf("testkit: nfcapd did not exit on SIGTERM (output:\n%s)", tail(n.out.String()))
		}
	}
	var ee *exec.ExitError
	if n.err != nil && !(errors.As(n.err, &ee) && ee.Exited() && ee.ExitCode() == 0) {
		return fmt.Errorf("testkit: nfcapd: %w (output:\n%s)", n.err, tail(n.out.String()))
	}
	return nil
}

// Output returns what nfcapd printed so far.
func (n *Nfcapd) Output() string { return n.out.String() }

// NfdumpRecord is one flow as nfdump prints it, counts not scaled by any
// sampling rate (nfcapd's -s is left at 1).
type NfdumpRecord struct {
	FlowKey
	Packets uint64
	Bytes   uint64
}

// ReadNfdump returns every record nfcapd wrote under dir, read with
// `nfdump -R dir -q -N -6 -o fmt:...`.
func ReadNfdump(ctx context.Context, dir string) ([]NfdumpRecord, error) {
	out, err := run(ctx, "", "nfdump", "-R", dir, "-q", "-N", "-6", "-o", "fmt:%sa|%da|%sp|%dp|%pr|%pkt|%byt")
	if err != nil {
		return nil, err
	}
	var recs []NfdumpRecord
	for ln, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := parseNfdumpLine(line)
		if err != nil {
			return nil, fmt.Errorf("testkit: nfdump line %d %q: %w", ln+1, line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil, errNoRecords
	}
	return recs, nil
}

func parseNfdumpLine(line string) (NfdumpRecord, error) {
	f := strings.Split(line, "|")
	if len(f) != 7 {
		return NfdumpRecord{}, fmt.Errorf("want 7 fields, got %d", len(f))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	var r NfdumpRecord
	var err error
	if r.Src, err = netip.ParseAddr(f[0]); err != nil {
		return r, fmt.Errorf("source: %w", err)
	}
	if r.Dst, err = netip.ParseAddr(f[1]); err != nil {
		return r, fmt.Errorf("destination: %w", err)
	}
	r.Src, r.Dst = r.Src.Unmap(), r.Dst.Unmap()
	nums := make([]uint64, 5)
	bits := []int{16, 16, 8, 64, 64}
	for i := range nums {
		if typ, code, ok := strings.Cut(f[2+i], "."); ok && i < 2 {
			// ICMP: nfdump prints the port as type.code.
			t, terr := strconv.ParseUint(typ, 10, 8)
			c, cerr := strconv.ParseUint(code, 10, 8)
			if err = errors.Join(terr, cerr); err != nil {
				return r, fmt.Errorf("field %d: %w", 3+i, err)
			}
			nums[i] = t<<8 | c
			continue
		}
		if nums[i], err = strconv.ParseUint(f[2+i], 10, bits[i]); err != nil {
			return r, fmt.Errorf("field %d: %w", 3+i, err)
		}
	}
	r.SrcPort, r.DstPort, r.Proto = uint16(nums[0]), uint16(nums[1]), uint8(nums[2])
	r.Packets, r.Bytes = nums[3], nums[4]
	return r, nil
}

// SumNfdump totals records, skipping marker flows (source MarkerSrc).
func SumNfdump(recs []NfdumpRecord) Counter {
	var c Counter
	for _, r := range recs {
		if r.Src == MarkerSrc {
			continue
		}
		c.Packets += r.Packets
		c.Bytes += r.Bytes
	}
	return c
}

// NfdumpDatagrams replays dgrams into a fresh nfcapd (temp directory, free
// port), stops it so it writes its file, and returns what nfdump reads back.
func NfdumpDatagrams(ctx context.Context, dgrams []Datagram) ([]NfdumpRecord, error) {
	dir, err := os.MkdirTemp("", "testkit-nfcapd-")
	if err != nil {
		return nil, fmt.Errorf("testkit: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	nf, err := StartNfcapd(ctx, dir)
	if err != nil {
		return nil, err
	}
	rerr := Replay(ctx, nf.Addr(), dgrams, 200*time.Microsecond)
	time.Sleep(200 * time.Millisecond) // let nfcapd drain its socket
	if err := nf.Stop(); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return ReadNfdump(ctx, dir)
}
