package intake

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader receives datagrams with recvmmsg(2) into buffers it owns and
// reuses: one system call for up to batchSize datagrams, and no allocation
// per datagram.
//
// It is written by hand rather than using golang.org/x/net's ReadBatch
// because that allocated a net.UDPAddr and a few more objects per datagram
// and converted every source address twice (to net.UDPAddr, then to
// netip.Addr): about 200 ns per datagram, or 25 ns per sFlow sample, in
// BenchmarkIntake's profile.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrAny
	bufs  [][]byte
	// zones names the interfaces of link-local sources' scope ids, so
	// that fe80::1 on two links stays two exporters; the kernel sets the
	// scope id from the receiving interface, so it holds one entry per
	// interface at most.
	zones map[uint32]string
	// addrs are the last read's source addresses, converted once by read
	// (the zero Addr for a source that is not an IP address); done marks
	// the datagrams bySource has handed out.
	addrs []netip.Addr
	done  []bool
	recv  func(fd uintptr) bool // r.recvmmsg
	// n and errno are what the last recvmmsg returned.
	n     int
	errno syscall.Errno
}

// mmsghdr is struct mmsghdr of recvmmsg(2): a message header and the length
// the kernel received into it. Go pads it as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// newBatchReader returns a reader of conn with n buffers of size bytes.
func newBatchReader(conn *net.UDPConn, n, size int) (*batchReader, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{rc: rc, hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrAny, n), bufs: make([][]byte, n), zones: map[uint32]string{},
		addrs: make([]netip.Addr, n), done: make([]bool, n)}
	r.recv = r.recvmmsg
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, size)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Namelen = unix.SizeofSockaddrAny
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
	}
	return r, nil
}

// read waits until at least one datagram is queued (or the connection's
// read deadline passes, or it is closed) and receives up to len(r.hdrs);
// it returns how many. Datagram i is then r.datagram(i), until the next read.
func (r *batchReader) read() (int, error) {
	// The kernel wrote the source address lengths of the last read's
	// datagrams only: give those headers their room back (not all 64: at
	// moderate rates a read returns one or two datagrams).
	for i := range r.n {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrAny
		r.hdrs[i].hdr.Flags = 0
	}
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.recv); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: r.errno}
	}
	for i := range r.n {
		r.addrs[i], _ = r.source(&r.names[i], r.hdrs[i].hdr.Namelen)
		r.done[i] = false
	}
	return r.n, nil
}

// bySource calls fn for every datagram of the last read whose source is
// an IP address: source by source in the order each first appears, and
// each source's datagrams in the order received. The caller can then fold
// each exporter's records into the core once per read even when
// exporters' datagrams interleave in the socket's queue.
func (r *batchReader) bySource(fn func(b []byte, addr netip.Addr)) {
	for i := range r.n {
		if r.done[i] || !r.addrs[i].IsValid() {
			continue
		}
		a := r.addrs[i]
		for j := i; j < r.n; j++ {
			if !r.done[j] && r.addrs[j] == a {
				r.done[j] = true
				fn(r.bufs[j][:r.hdrs[j].len], a)
			}
		}
	}
}

// recvmmsg is the function read passes to RawConn.Read (a method value made
// once, in newBatchReader: a closure made per call would escape and cost two
// allocations per batch). It reports false to wait for the poller.
func (r *batchReader) recvmmsg(fd uintptr) bool {
	for {
		m, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.n = int(m)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // nothing queued
		default:
			r.errno = e
			return true
		}
	}
}

// datagram returns the payload and source address of datagram i of the last
// read; ok is false for a source that is not an IP address (not seen on a
// UDP socket). An IPv4 source on a dual-stack socket comes unmapped.
func (r *batchReader) datagram(i int) (b []byte, addr netip.Addr, ok bool) {
	return r.bufs[i][:r.hdrs[i].len], r.addrs[i], r.addrs[i].IsValid()
}

// source converts a source address the kernel wrote (namelen bytes of sa).
func (r *batchReader) source(sa *unix.RawSockaddrAny, namelen uint32) (netip.Addr, bool) {
	switch sa.Addr.Family {
	case unix.AF_INET:
		if namelen < unix.SizeofSockaddrInet4 {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr), true
	case unix.AF_INET6:
		if namelen < unix.SizeofSockaddrInet6 {
			return netip.Addr{}, false
		}
		sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		a := netip.AddrFrom16(sa6.Addr).Unmap()
		if sa6.Scope_id != 0 && a.Is6() {
			a = a.WithZone(r.zone(sa6.Scope_id))
		}
		return a, true
	}
	return netip.Addr{}, false
}

// zone returns the name of interface index, or its number when the lookup
// fails (the interface went away); a name is looked up once per index, a
// failed lookup is not remembered.
func (r *batchReader) zone(index uint32) string {
	if z, ok := r.zones[index]; ok {
		return z
	}
	ifi, err := net.InterfaceByIndex(int(index))
	if err != nil {
		return strconv.FormatUint(uint64(index), 10)
	}
	if len(r.zones) < maxZones {
		r.zones[index] = ifi.Name
	}
	return ifi.Name
}

// maxZones bounds the zone cache (one entry per interface in practice).
const maxZones = 1024
