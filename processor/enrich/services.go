package enrich

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/flowmetrics/flowmetrics/processor/flow"
)

// ServiceName names a port.
type ServiceName struct {
	// Port is the service port.
	Port uint16
	// Proto is "tcp" (also used for SCTP), "udp", or "" for both.
	Proto string
	// Name is the service label value.
	Name string
}

// Validate reports the first problem in s.
func (s ServiceName) Validate() error {
	if s.Port == 0 {
		return errors.New("port: must be 1..65535")
	}
	switch s.Proto {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("proto: must be tcp, udp or empty (both), got %q", s.Proto)
	}
	if s.Name == "" {
		return errors.New("name: must not be empty")
	}
	if flow.Reserved(s.Name) {
		return fmt.Errorf("name: %q is reserved (overflow series and flows without ports use it)", s.Name)
	}
	// An unnamed port is its number: a name that is one would share its
	// labels.
	if _, err := strconv.ParseUint(s.Name, 10, 64); err == nil {
		return fmt.Errorf("name: %q is a number, as unnamed ports are shown", s.Name)
	}
	return nil
}

// EphemeralService is the service of a flow whose ports are both unnamed and
// at or above the ephemeral range's start.
const EphemeralService = "ephemeral"

// DefaultEphemeralPortMin is the start of the ephemeral range used when none
// is configured (IANA's dynamic range starts at 49152; Linux uses 32768).
const DefaultEphemeralPortMin = 32768

// BuiltinServices is the small built-in port table; configured names are
// added to it and win over it.
var BuiltinServices = []ServiceName{
	{20, "tcp", "ftp-data"}, {21, "tcp", "ftp"}, {22, "tcp", "ssh"}, {23, "tcp", "telnet"},
	{25, "tcp", "smtp"}, {53, "", "dns"}, {67, "udp", "dhcp"}, {68, "udp", "dhcp"},
	{69, "udp", "tftp"}, {80, "tcp", "http"}, {88, "", "kerberos"}, {110, "tcp", "pop3"},
	{111, "", "sunrpc"}, {123, "udp", "ntp"}, {135, "tcp", "msrpc"}, {137, "udp", "netbios"},
	{138, "udp", "netbios"}, {139, "tcp", "netbios"}, {143, "tcp", "imap"}, {161, "udp", "snmp"},
	{162, "udp", "snmptrap"}, {179, "tcp", "bgp"}, {389, "", "ldap"}, {443, "tcp", "https"},
	{443, "udp", "quic"}, {445, "tcp", "smb"}, {465, "tcp", "smtps"}, {500, "udp", "isakmp"},
	{514, "udp", "syslog"}, {546, "udp", "dhcpv6"}, {547, "udp", "dhcpv6"}, {587, "tcp", "submission"},
	{636, "tcp", "ldaps"}, {853, "", "dns-over-tls"}, {993, "tcp", "imaps"}, {995, "tcp", "pop3s"},
	{1194, "", "openvpn"}, {1433, "tcp", "mssql"}, {1521, "tcp", "oracle"}, {1812, "udp", "radius"},
	{1813, "udp", "radius"}, {2049, "", "nfs"}, {2055, "udp", "netflow"}, {3306, "tcp", "mysql"},
	{3389, "", "rdp"}, {3478, "", "stun"}, {4500, "udp", "ipsec-nat-t"}, {4739, "udp", "ipfix"},
	{4789, "udp", "vxlan"}, {5060, "", "sip"}, {5061, "tcp", "sips"}, {5353, "udp", "mdns"},
	{5432, "tcp", "postgresql"}, {5672, "tcp", "amqp"}, {6343, "udp", "sflow"}, {6379, "tcp", "redis"},
	{6443, "tcp", "kubernetes"}, {8080, "tcp", "http-alt"}, {8443, "tcp", "https-alt"},
	{9092, "tcp", "kafka"}, {11211, "", "memcached"}, {27017, "tcp", "mongodb"},
}

// serviceTable maps ports to services; immutable once built.
type serviceTable struct {
	tcp, udp     [1 << 16]flow.Service
	ephemeral    flow.Service
	ephemeralMin uint32 // 65536: no grouping
}

// newServiceTable builds the built-in table with extra names over it; extra
// must be valid. ephemeralMin 0 disables the grouping of ephemeral ports.
func newServiceTable(extra []ServiceName, ephemeralMin uint16) *serviceTable {
	t := &serviceTable{ephemeral: flow.ServiceFromSymbol(flow.Intern(EphemeralService)), ephemeralMin: uint32(ephemeralMin)}
	if ephemeralMin == 0 {
		t.ephemeralMin = 1 << 16
	}
	for _, list := range [][]ServiceName{BuiltinServices, extra} {
		for _, s := range list {
			v := flow.ServiceFromSymbol(flow.Intern(s.Name))
			if s.Proto != "udp" {
				t.tcp[s.Port] = v
			}
			if s.Proto != "tcp" {
				t.udp[s.Port] = v
			}
		}
	}
	return t
}

// classify returns the service of a flow: for TCP, UDP, SCTP and UDP-Lite
// the name of the lower port if it has one, else of the higher; else
// "ephemeral" when the lower non-zero port is in the ephemeral range; else
// the lower non-zero port as a number. Other protocols (and flows without
// ports) get the zero Service, rendered "none".
func (t *serviceTable) classify(proto uint8, src, dst uint16) flow.Service {
	var ports *[1 << 16]flow.Service
	switch proto {
	case 6, 132:
		ports = &t.tcp
	case 17, 136:
		ports = &t.udp
	default:
		return 0
	}
	lo, hi := src, dst
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == 0 {
		lo = hi
	}
	if lo == 0 {
		return 0
	}
	if s := ports[lo]; s != 0 {
		return s
	}
	if s := ports[hi]; s != 0 {
		return s
	}
	if uint32(lo) >= t.ephemeralMin {
		return t.ephemeral
	}
	return flow.ServiceFromPort(lo)
}
