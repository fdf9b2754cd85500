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
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds an exporter run when ctx has no deadline.
const DefaultTimeout = 60 * time.Second

// SkipIfMissing skips t when one of the binaries is not on PATH, unless the
// CI environment variable is set to a non-empty value other than "false": then
// a missing binary fails the test, so CI cannot silently test nothing.
func SkipIfMissing(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("testkit: required binaries missing on PATH with CI=%s: %s", ci, strings.Join(missing, ", "))
		return
	}
	t.Skipf("testkit: binaries missing on PATH: %s (set CI=true to fail instead)", strings.Join(missing, ", "))
}

// run executes name with args, waiting for it to exit. stdout and stderr are
// collected and returned, and quoted in the error when it fails or times out.
func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("testkit: %s %s: %w (output:\n%s)", name, strings.Join(args, " "), ctx.Err(), tail(out.String()))
	}
	if err != nil {
		return out.String(), fmt.Errorf("testkit: %s %s: %w (output:\n%s)", name, strings.Join(args, " "), err, tail(out.String()))
	}
	return out.String(), nil
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// checkTarget makes sure target is a numeric 127.0.0.1 address and port.
func checkTarget(target string) error {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return fmt.Errorf("testkit: target %q: %w", target, err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("testkit: target %q is not a loopback address", target)
	}
	return nil
}

// SoftflowdArgs returns the softflowd command line RunSoftflowd uses: read
// pcap once with pcap time (-a), no control socket (-c none, else softflowd
// may wait at end of file), pid file in dir, export every flow at EOF.
func SoftflowdArgs(pcap, target, pidFile string, version, sampling int) []string {
	args := []string{"-d", "-c", "none", "-a", "-r", pcap, "-n", target, "-v", fmt.Sprint(version), "-p", pidFile}
	if sampling > 1 {
		args = append(args, "-s", fmt.Sprint(sampling))
	}
	return args
}

// RunSoftflowd replays pcap through softflowd, exporting NetFlow v5, v9 or
// IPFIX (version 10) to target (127.0.0.1:port), and returns when softflowd
// has exited. softflowd flushes every flow at end of file in one burst. With
// sampling > 1 it keeps frames 1, N+1, 2N+1, ... (see Truth.SampledEvery).
// NetFlow v5 cannot carry IPv6: softflowd counts those frames as ignored.
func RunSoftflowd(ctx context.Context, pcap, target string, version, sampling int) error {
	_, err := RunSoftflowdOutput(ctx, pcap, target, version, sampling)
	return err
}

// RunSoftflowdOutput is RunSoftflowd that also returns softflowd's output
// (its end-of-run statistics).
func RunSoftflowdOutput(ctx context.Context, pcap, target string, version, sampling int) (string, error) {
	switch version {
	case 5, 9, 10:
	default:
		return "", fmt.Errorf("testkit: softflowd version %d: want 5, 9 or 10", version)
	}
	if err := checkTarget(target); err != nil {
		return "", err
	}
	pcap, err := filepath.Abs(pcap)
	if err != nil {
		return "", fmt.Errorf("testkit: pcap path: %w", err)
	}
	dir, err := os.MkdirTemp("", "testkit-softflowd-")
	if err != nil {
		return "", fmt.Errorf("testkit: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	out, err := run(ctx, dir, "softflowd", SoftflowdArgs(pcap, target, filepath.Join(dir, "softflowd.pid"), version, sampling)...)
	if err != nil {
		return out, err
	}
	if !strings.Contains(out, "Flows exported:") {
		return out, fmt.Errorf("testkit: softflowd exited without statistics (output:\n%s)", tail(out))
	}
	return out, nil
}

// PmacctNfprobeConfig returns the pmacctd configuration RunPmacctNfprobe
// uses. pmacctd reads pcap_savefile once and exits (pcap_savefile_wait:
// false); at exit the nfprobe plugin expires and exports every flow.
// samplingRate > 1 sets sampling_rate, which pmacct applies at random.
func PmacctNfprobeConfig(pcap, target string, version, samplingRate int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\n", pcap)
	b.WriteString("plugins: nfprobe[fm]\n")
	fmt.Fprintf(&b, "nfprobe_receiver[fm]: %s\nnfprobe_version[fm]: %d\n", target, version)
	if samplingRate > 1 {
		fmt.Fprintf(&b, "sampling_rate: %d\n", samplingRate)
	}
	return b.String()
}

// PmacctSfprobeConfig returns the pmacctd configuration RunPmacctSfprobe
// uses: one sfprobe plugin, agent 127.0.0.1, pcap read once.
func PmacctSfprobeConfig(pcap, target string, samplingRate int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\n", pcap)
	b.WriteString("plugins: sfprobe[fm]\n")
	fmt.Fprintf(&b, "sfprobe_receiver[fm]: %s\nsfprobe_agentip[fm]: 127.0.0.1\n", target)
	if samplingRate > 1 {
		fmt.Fprintf(&b, "sampling_rate: %d\n", samplingRate)
	}
	return b.String()
}

// RunPmacctNfprobe replays pcap through pmacctd's nfprobe plugin, exporting
// NetFlow v5, v9 or IPFIX (version 10) to target, and returns when pmacctd
// has exited (about 4 s: pmacctd sleeps 2 s before reading a savefile).
// samplingRate > 1 samples at random, so only unsampled runs match a Truth
// exactly.
func RunPmacctNfprobe(ctx context.Context, pcap, target string, version, samplingRate int) error {
	switch version {
	case 5, 9, 10:
	default:
		return fmt.Errorf("testkit: nfprobe version %d: want 5, 9 or 10", version)
	}
	return runPmacct(ctx, pcap, target, func(abs string) string {
		return PmacctNfprobeConfig(abs, target, version, samplingRate)
	})
}

// SfprobeMaxSamplesPerDatagram bounds how many flow samples pmacctd's
// sfprobe packs into one datagram for the frames WritePcap makes: its
// datagrams are at most 1400 bytes and a sample of a 114-byte marker frame
// takes about 180; at most 7 have been seen. TestPmacctSfprobe checks it.
const SfprobeMaxSamplesPerDatagram = 12

// SfprobeMarkers returns how many marker frames (Spec.Markers) keep every
// traffic sample of a RunPmacctSfprobe run at samplingRate. sfprobe sends a
// datagram when the next sample does not fit or on its once-a-second tick,
// and drops the one it is filling at exit, so where that last datagram
// starts depends on timing: enough marker samples must follow the traffic
// to fill a datagram. sfprobe skips 1 to 2*rate-1 packets between samples
// (random() with a fixed seed, the same sequence every run), so any 2*rate-1
// consecutive frames hold at least one sample.
func SfprobeMarkers(samplingRate int) int {
	return SfprobeMaxSamplesPerDatagram * (2*max(samplingRate, 1) - 1)
}

// RunPmacctSfprobe replays pcap through pmacctd's sfprobe plugin, exporting
// sFlow v5 to target, and returns when pmacctd has exited. sfprobe drops the
// samples of its last, partly filled datagram at exit: append
// SfprobeMarkers(samplingRate) marker frames (Spec.Markers) so that only
// markers are lost.
func RunPmacctSfprobe(ctx context.Context, pcap, target string, samplingRate int) error {
	return runPmacct(ctx, pcap, target, func(abs string) string {
		return PmacctSfprobeConfig(abs, target, samplingRate)
	})
}

func runPmacct(ctx context.Context, pcap, target string, config func(abs string) string) error {
	if err := checkTarget(target); err != nil {
		return err
	}
	abs, err := filepath.Abs(pcap)
	if err != nil {
		return fmt.Errorf("testkit: pcap path: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("testkit: pcap: %w", err)
	}
	dir, err := os.MkdirTemp("", "testkit-pmacctd-")
	if err != nil {
		return fmt.Errorf("testkit: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(conf, []byte(config(abs)), 0o600); err != nil {
		return fmt.Errorf("testkit: write pmacctd config: %w", err)
	}
	out, err := run(ctx, dir, "pmacctd", "-f", conf)
	if err != nil {
		// At end of file the core and the plugin race to shut down: the
		// core may exit 1 ("connection lost to ...") after the plugin has
		// already flushed and left. That is a normal end.
		var ee *exec.ExitError
		if ctx.Err() == nil && errors.As(err, &ee) && strings.Contains(out, "Shutting down on user request") {
			return nil
		}
		return err
	}
	if strings.Contains(out, "ERROR") {
		return fmt.Errorf("testkit: pmacctd reported an error (output:\n%s)", tail(out))
	}
	return nil
}

// FreePort returns a 127.0.0.1:port address that was free just now for
// network ("udp" or "tcp").
func FreePort(t testing.TB, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
