package snmp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// fakeAgent answers GetNext and GetBulk requests on 127.0.0.1 from a
// fixed IF-MIB, and lets a test make it answer some requests with an
// error status, as busy or strict agents do.
type fakeAgent struct {
	port int
	vars []gosnmp.SnmpPDU // sorted by OID

	mu sync.Mutex
	// fail, when set, is asked for each request (its OID and the
	// repetitions asked, 0 for GetNext) and returns the error status to
	// answer with, or NoError to answer normally.
	fail     func(oid string, reps uint32) gosnmp.SNMPError
	requests int
}

// oidLess orders OIDs numerically, component by component.
func oidLess(a, b string) bool {
	as, bs := strings.Split(strings.TrimPrefix(a, "."), "."), strings.Split(strings.TrimPrefix(b, "."), ".")
	for i := range min(len(as), len(bs)) {
		x, _ := strconv.ParseUint(as[i], 10, 64)
		y, _ := strconv.ParseUint(bs[i], 10, 64)
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// startFakeAgent serves n interfaces (indexes 1..n): ifDescr "descr<i>",
// ifSpeed 1 Gb/s, ifName "if<i>", ifAlias "alias <i>", ifHighSpeed 1000.
func startFakeAgent(t *testing.T, n int) *fakeAgent {
	t.Helper()
	a := &fakeAgent{}
	for i := 1; i <= n; i++ {
		idx := "." + strconv.Itoa(i)
		a.vars = append(a.vars,
			gosnmp.SnmpPDU{Name: oidIfDescr + idx, Type: gosnmp.OctetString, Value: []byte(fmt.Sprintf("descr%d", i))},
			gosnmp.SnmpPDU{Name: oidIfSpeed + idx, Type: gosnmp.Gauge32, Value: uint(1_000_000_000)},
			gosnmp.SnmpPDU{Name: oidIfName + idx, Type: gosnmp.OctetString, Value: []byte(fmt.Sprintf("if%d", i))},
			gosnmp.SnmpPDU{Name: oidIfAlias + idx, Type: gosnmp.OctetString, Value: []byte(fmt.Sprintf("alias %d", i))},
			gosnmp.SnmpPDU{Name: oidIfHighSpeed + idx, Type: gosnmp.Gauge32, Value: uint(1000)},
		)
	}
	slices.SortFunc(a.vars, func(x, y gosnmp.SnmpPDU) int {
		switch {
		case oidLess(x.Name, y.Name):
			return -1
		case oidLess(y.Name, x.Name):
			return 1
		}
		return 0
	})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	a.port = conn.LocalAddr().(*net.UDPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		dec := &gosnmp.GoSNMP{}
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := dec.SnmpDecodePacket(buf[:n])
			if err != nil || len(req.Variables) == 0 {
				continue
			}
			resp := a.answer(req)
			b, err := resp.MarshalMsg()
			if err != nil {
				t.Errorf("fake agent: %v", err)
				return
			}
			_, _ = conn.WriteToUDP(b, from)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return a
}

// setFail sets the agent's fail function (under its lock: the agent's
// goroutine reads it).
func (a *fakeAgent) setFail(fail func(oid string, reps uint32) gosnmp.SNMPError) {
	a.mu.Lock()
	a.fail = fail
	a.mu.Unlock()
}

func (a *fakeAgent) answer(req *gosnmp.SnmpPacket) *gosnmp.SnmpPacket {
	resp := &gosnmp.SnmpPacket{Version: req.Version, Community: req.Community, PDUType: gosnmp.GetResponse, RequestID: req.RequestID}
	oid := req.Variables[0].Name
	reps := uint32(1)
	var askedReps uint32
	if req.PDUType == gosnmp.GetBulkRequest {
		reps, askedReps = req.MaxRepetitions, req.MaxRepetitions
	}
	a.mu.Lock()
	a.requests++
	fail := a.fail
	a.mu.Unlock()
	if fail != nil {
		if st := fail(oid, askedReps); st != gosnmp.NoError {
			resp.Error, resp.ErrorIndex = st, 1
			resp.Variables = []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Null}}
			return resp
		}
	}
	i, _ := slices.BinarySearchFunc(a.vars, oid, func(v gosnmp.SnmpPDU, o string) int {
		if oidLess(v.Name, o) || v.Name == o {
			return -1
		}
		return 1
	})
	for range reps {
		if i >= len(a.vars) {
			if req.Version == gosnmp.Version1 {
				resp.Error, resp.ErrorIndex = gosnmp.NoSuchName, 1
				resp.Variables = []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Null}}
				return resp
			}
			resp.Variables = append(resp.Variables, gosnmp.SnmpPDU{Name: oid, Type: gosnmp.EndOfMibView})
			break
		}
		resp.Variables = append(resp.Variables, a.vars[i])
		oid = a.vars[i].Name
		i++
	}
	return resp
}

// failAt answers a request for exactly oid with status.
func failAt(oid string, status gosnmp.SNMPError) func(string, uint32) gosnmp.SNMPError {
	return func(o string, _ uint32) gosnmp.SNMPError {
		if o == oid {
			return status
		}
		return gosnmp.NoError
	}
}

// failUnder answers every request under the OID prefix with status.
func failUnder(prefix string, status gosnmp.SNMPError) func(string, uint32) gosnmp.SNMPError {
	return func(o string, _ uint32) gosnmp.SNMPError {
		if strings.HasPrefix(o, prefix) {
			return status
		}
		return gosnmp.NoError
	}
}

// TestPollAgentErrors: a walk that an agent ends with an error status
// (genErr from a busy agent, authorizationError, tooBig for a bulk request
// too large for its buffer) did not read the whole table. The poll must
// fail, keeping the last good answer, or (tooBig) ask again for fewer
// rows; before, the walk stopped there without an error, and the poll
// counted as a success that replaced every name, alias and speed with
// the part read so far.
func TestPollAgentErrors(t *testing.T) {
	const n = 45 // three bulk requests per column
	tests := []struct {
		name    string
		version string
		fail    func(oid string, reps uint32) gosnmp.SNMPError
		wantErr string // empty: the whole table
	}{
		{"no error, v2c", "2c", nil, ""},
		{"no error, v1", "1", nil, ""},
		{"genErr in the middle of ifDescr", "2c", failAt(oidIfDescr+".20", gosnmp.GenErr), "GenErr"},
		{"authorizationError on ifAlias", "2c", failUnder(oidIfAlias, gosnmp.AuthorizationError), "AuthorizationError"},
		{"genErr in the middle of ifName, v1", "1", failAt(oidIfName+".30", gosnmp.GenErr), "GenErr"},
		{"tooBig for more than 5 rows", "2c", func(_ string, reps uint32) gosnmp.SNMPError {
			if reps > 5 {
				return gosnmp.TooBig
			}
			return gosnmp.NoError
		}, ""},
		{"tooBig for any bulk request", "2c", func(_ string, reps uint32) gosnmp.SNMPError {
			if reps > 0 {
				return gosnmp.TooBig
			}
			return gosnmp.NoError
		}, "TooBig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startFakeAgent(t, n)
			a.setFail(tt.fail)
			cfg := Config{Port: a.port, Community: "public", Version: tt.version, Timeout: time.Second, Retries: 0}
			ifs, err := Poll(context.Background(), cfg, netip.MustParseAddr("127.0.0.1"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Poll = %d interfaces, %v; want an error naming %s", len(ifs), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ifs) != n {
				t.Fatalf("Poll returned %d interfaces, want %d", len(ifs), n)
			}
			for _, i := range ifs {
				want := fmt.Sprintf("if%d alias %d 1000000000", i.Index, i.Index)
				if got := fmt.Sprintf("%s %s %d", i.Name, i.Alias, i.Speed); got != want {
					t.Errorf("interface %d = %q, want %q", i.Index, got, want)
				}
			}
		})
	}
}
