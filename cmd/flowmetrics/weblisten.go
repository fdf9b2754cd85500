package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
)

// validateWebListen checks the --web.listen-address values as
// exporter-toolkit will listen on them (net.Listen "tcp", or vsock://:port),
// so that a value that can never be listened on is refused before the flow
// sockets are bound, as an invalid configuration, and by --config.check.
// The host is not resolved: a name may resolve by the time it is used. An
// address twice, or on Linux an address of every interface beside any
// other on its port, is refused too: the second listen would fail.
func validateWebListen(addrs []string) error {
	const name = "--web.listen-address"
	if len(addrs) == 0 {
		return fmt.Errorf("%s: at least one address is required", name)
	}
	seen := map[string]int{}
	// On Linux an address of every interface (":p", "0.0.0.0:p", "[::]:p":
	// Go listens on each as [::], for IPv4 and IPv6) takes port p on every
	// address: no other address can listen on p beside it.
	onPort := map[int]int{}   // port: the first address on it
	wildcard := map[int]int{} // port: the first address of every interface on it
	for i, a := range addrs {
		key := a
		n, every := 0, false // the TCP port (0: none or vsock); of every interface
		if rest, ok := strings.CutPrefix(a, "vsock://"); ok {
			// As exporter-toolkit reads it: the port of the URL's host.
			var port string
			u, err := url.Parse(a)
			if err == nil && rest == u.Host {
				_, port, err = net.SplitHostPort(u.Host)
			}
			if err != nil || rest != u.Host {
				return fmt.Errorf("%s[%d]: %q is not vsock://[cid]:port", name, i, a)
			}
			if _, err := strconv.ParseUint(port, 10, 32); err != nil {
				return fmt.Errorf("%s[%d]: %q: the vsock port must be a number", name, i, a)
			}
		} else {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				return fmt.Errorf("%s[%d]: %q is not host:port (for every interface, :port)", name, i, a)
			}
			n, err = net.LookupPort("tcp", port)
			if err != nil {
				return fmt.Errorf("%s[%d]: %q: the port must be a number from 0 to 65535 or a service name", name, i, a)
			}
			key = net.JoinHostPort(host, strconv.Itoa(n))
			every = host == ""
			if ip, err := netip.ParseAddr(host); err == nil {
				key = netip.AddrPortFrom(ip, uint16(n)).String()
				every = ip.IsUnspecified()
			}
			if n == 0 {
				continue // each :0 gets a port of its own
			}
		}
		if j, ok := seen[key]; ok {
			return fmt.Errorf("%s[%d]: %q is %s[%d] again", name, i, a, name, j)
		}
		seen[key] = i
		if n == 0 || runtime.GOOS != "linux" {
			continue
		}
		j, taken := wildcard[n]
		if every && !taken {
			j, taken = onPort[n]
		}
		if taken {
			return fmt.Errorf("%s[%d]: %q and %s[%d] %q cannot both listen on port %d (one is every interface's)", name, i, a, name, j, addrs[j], n)
		}
		if _, ok := onPort[n]; !ok {
			onPort[n] = i
		}
		if every {
			wildcard[n] = i
		}
	}
	return nil
}
