package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/flowgen"
	"github.com/flowmetrics/flowmetrics/processor/health"
	"github.com/flowmetrics/flowmetrics/receiver/decode"
)

// fakeEnv makes the test binary, run as a child process, act as the
// collector under test (see fakeCollector).
const fakeEnv = "LOADTEST_FAKE_COLLECTOR"

// burnEnv is how long the fake collector spins on its first datagram, so
// that its CPU time is measurable.
const burnEnv = "LOADTEST_FAKE_BURN"

// mainEnv makes the test binary, run as a child process, run the load
// test's main with its arguments.
const mainEnv = "LOADTEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		fakeCollector(os.Args[1:])
		return
	}
	if os.Getenv(mainEnv) == "1" {
		// The collectors main starts (this binary) are the fake.
		os.Unsetenv(mainEnv)
		os.Setenv(fakeEnv, "1")
		os.Args = append([]string{"loadtest"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs the load test's main in a child process with args, the
// fake collector standing in for bin/flowmetrics (--binary), and returns
// its exit code and output.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--binary", os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// fakeCollector stands in for bin/flowmetrics: it takes the flags step
// passes, decodes what arrives on 127.0.0.1 with flowmetrics' decoder and
// serves flowmetrics_records_total and flowmetrics_socket_drops_total
// (always 0) on /metrics. It spins for $LOADTEST_FAKE_BURN on its first
// datagram. It stops at SIGINT, as step stops it, or after
// a minute in any case.
func fakeCollector(args []string) {
	fs := flag.NewFlagSet("fake", flag.ExitOnError)
	flows := fs.String("flow.listen-address", "", "")
	web := fs.String("web.listen-address", "", "")
	fs.String("config.file", "", "")
	fs.String("log.level", "", "")
	_ = fs.Parse(args)
	pc, err := net.ListenPacket("udp", *flows)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = pc.(*net.UDPConn).SetReadBuffer(8 << 20)
	burnFirst, _ := time.ParseDuration(os.Getenv(burnEnv))
	var mu sync.Mutex
	records := 0
	go func() {
		d := decode.New(decode.Limits{})
		exs := map[netip.Addr]*health.Exporter{}
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			addr := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			if exs[addr] == nil {
				exs[addr] = &health.Exporter{}
			}
			res, _ := d.Decode(buf[:n], addr, exs[addr])
			mu.Lock()
			if records == 0 {
				burn(burnFirst)
			}
			records += len(res.Records)
			mu.Unlock()
		}
	}()
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "flowmetrics_records_total %d\nflowmetrics_socket_drops_total 0\n", records)
	})
	go func() { _ = http.ListenAndServe(*web, nil) }()
	time.Sleep(time.Minute)
}

// burn spins until the process has used d more CPU time (not wall time:
// on a busy machine it may get less than a core), so that the fake
// collector's CPU time is measurable.
func burn(d time.Duration) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for end := cpu() + d; cpu() < end; {
	}
}

// TestStepProcessedRate runs a step against the fake collector, which
// keeps up with any rate here: the processed rate must be the rate the
// records were sent at. The step's clock started before flowgen built
// its datagram rings (some 10 ms per exporter), so the processed rate
// of a short step read well below the offered one, and a "zero-loss"
// rate lower than what was processed.
func TestStepProcessedRate(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	const rate, records = 30_000.0, 3_000 // 0.1 s of sending
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := step(ctx, os.Args[0], flowgen.V9, rate, records, 0, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	if res.lost != 0 || res.drops != 0 {
		t.Fatalf("lost %v, drops %v", res.lost, res.drops)
	}
	// Against the rate achieved rather than the one offered, so that a
	// sender slowed down by a busy machine does not fail the test.
	if res.rate < 0.95*res.sent || res.rate > 1.001*res.sent {
		t.Fatalf("processed %.0f records/s of %.0f sent (%.0f offered) to a collector that keeps up", res.rate, res.sent, rate)
	}
	// Decoding 3,000 records takes a few ms of the 0.1 s step (and the
	// CPU clock ticks every 10 ms): far from a whole core.
	if res.busy > 0.5 {
		t.Fatalf("collector busy %.2f of a core decoding 30 k records/s", res.busy)
	}
}

// TestBadFlagsBeforeFirstStep: a misspelt protocol or an exporter count
// below 1 is refused before any step runs. A typo in --protocols used to
// surface only when its turn came, after the steps of the protocols
// before it (minutes at the default 1 M records per step); --exporters 0
// was quietly taken as 1.
func TestBadFlagsBeforeFirstStep(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--protocols", "v5,ipfx", "--records", "300", "--rates", "0"}, `"ipfx"`},
		{[]string{"--protocols", "v5", "--records", "300", "--rates", "0", "--exporters", "0"}, "--exporters must be at least 1"},
		{[]string{"--protocols", "v5", "--records", "300", "--rates", "0", "--compare", "--rounds", "2"}, "--rounds does not apply to --compare"},
	} {
		code, stdout, stderr := runMain(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) || strings.Contains(stdout, "v5 ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 before any step, naming %s", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

// TestStepWrapperScript: --binary may be a script that starts the
// collector without exec (README: "a script that runs bin/flowmetrics
// under taskset -c 1"). The step measured and stopped the script's own
// process only: CPU 0.00 and the shell's peak RSS, and the interrupt
// reached the shell but not the collector, so the step waited for a
// collector that never ends (the fake ends after a minute).
func TestStepWrapperScript(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	t.Setenv(burnEnv, "100ms")
	script := filepath.Join(t.TempDir(), "pin.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n'"+os.Args[0]+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		r   stepResult
		err error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := step(ctx, script, flowgen.V9, 0, 3_000, 0, 0, 1)
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatal(res.err)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("step took %v to stop its collector", took)
		}
		// The fake burns 100 ms on its first datagram; a Go process
		// serving HTTP has a peak RSS of several MB, a shell of about 1.5.
		if res.r.cpu < 0.05 || res.r.rssKB < 4000 {
			t.Fatalf("measured %.2f CPU s and %d kB peak RSS: the script, not the collector it runs", res.r.cpu, res.r.rssKB)
		}
		// The burn is most of the step: the collector spun for 100 ms
		// of CPU while the step lasted little more (0.2: a loaded
		// machine may give the spinning process only part of a core).
		if res.r.busy < 0.2 || res.r.busy > 1.5 {
			t.Fatalf("collector busy %.2f of a core (%.2f CPU s) while spinning on one core", res.r.busy, res.r.cpu)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("step still stopping its collector after 20 s")
	}
}

// TestRounds: --rounds runs every protocol's steps round after round (so
// that on a shared machine each protocol meets the same spells) and sums
// each protocol up once, over all its rounds, after its last step.
func TestRounds(t *testing.T) {
	code, stdout, stderr := runMain(t, "--rounds", "2", "--protocols", "v5,v9", "--rates", "0", "--records", "300")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[1] == "max":
			order = append(order, f[0])
		case len(f) > 1 && f[1] == "zero-loss:":
			order = append(order, f[0]+" summary")
		}
	}
	want := []string{"v5", "v9", "v5", "v5 summary", "v9", "v9 summary"}
	if !slices.Equal(order, want) {
		t.Errorf("steps and summaries in the order %q, want %q; output:\n%s", order, want, stdout)
	}
	if code, _, stderr := runMain(t, "--rounds", "0", "--protocols", "v5", "--records", "300"); code != 2 || !strings.Contains(stderr, "--rounds must be at least 1") {
		t.Errorf("--rounds 0: exit %d, stderr %q; want exit 2 naming --rounds", code, stderr)
	}
}
