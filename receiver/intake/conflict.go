package intake

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// udpSocket is one line of /proc/net/udp or /proc/net/udp6.
type udpSocket struct {
	addr  netip.AddrPort
	inode uint64
	drops uint64 // datagrams the kernel dropped on the socket
}

// readUDPSockets lists the UDP sockets of the network namespace from
// procfs; without procfs it returns none.
func readUDPSockets() []udpSocket {
	var out []udpSocket
	for _, p := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 13 {
				continue
			}
			ap, ok := parseProcAddr(fs[1])
			inode, err1 := strconv.ParseUint(fs[9], 10, 64)
			drops, err2 := strconv.ParseUint(fs[12], 10, 64)
			if ok && err1 == nil && err2 == nil {
				out = append(out, udpSocket{addr: ap, inode: inode, drops: drops})
			}
		}
		f.Close()
	}
	return out
}

// parseProcAddr parses procfs's local_address: the address in hex as the
// host stores its 32-bit words (little-endian here), a colon, the port.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	b, err2 := hex.DecodeString(h)
	if !ok || err != nil || err2 != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(b[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// checkPortShared fails if a socket other than the intake's own (mine) and
// those of the intake it replaces (also mine) is bound to the port of
// local on an address that overlaps it. SO_REUSEPORT lets another
// flowmetrics (or another Collector receiver) of the same user bind the
// same port without an error, and the kernel would then split the
// exporters between the two: each would count part of the traffic.
func checkPortShared(local *net.UDPAddr, mine map[uint64]bool) error {
	la, _ := netip.AddrFromSlice(local.IP)
	la = la.Unmap()
	for _, s := range readUDPSockets() {
		if int(s.addr.Port()) != local.Port || mine[s.inode] {
			continue
		}
		if a := s.addr.Addr(); a == la || a.IsUnspecified() || la.IsUnspecified() {
			return fmt.Errorf("UDP port %d is also bound by another socket (%s, inode %d: another flowmetrics or Collector receiver?); the kernel would split the exporters between them", local.Port, s.addr, s.inode)
		}
	}
	return nil
}
