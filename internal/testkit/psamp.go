package testkit

import (
	"context"
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// psampExport is a PSAMP exporter written with python3-ipfix (Debian), an
// IPFIX encoder independent of goflow2: see the script's header.
//
//go:embed psamp_export.py
var psampExport []byte

// systemPython is Debian's interpreter, the one python3-ipfix installs for
// (a python3 earlier on PATH, such as pyenv's, does not see it).
const systemPython = "/usr/bin/python3"

// SkipIfNoPSAMPExporter skips t when Debian's python3 with python3-ipfix is
// missing, or fails it with CI set, as SkipIfMissing does.
func SkipIfNoPSAMPExporter(t testing.TB) {
	t.Helper()
	SkipIfMissing(t, systemPython)
	if out, err := run(context.Background(), "", systemPython, "-c", "import ipfix.message"); err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("testkit: python3-ipfix missing with CI=%s: %s", ci, out)
		}
		t.Skipf("testkit: python3-ipfix missing (apt-get install python3-ipfix): %s", out)
	}
}

// RunPSAMPExport exports every n-th frame of pcap (frames 0, n, 2n, ...:
// Truth.SampledEvery(n)) to target as IPFIX PSAMP records, as Juniper's
// inline monitoring does: ingressInterface 3, egressInterface 4,
// dataLinkFrameSize and the frame's first snaplen bytes
// (dataLinkFrameSection), after an options record stating 1:n. It returns
// the number of records sent.
func RunPSAMPExport(ctx context.Context, pcap, target string, n, snaplen int) (int, error) {
	if err := checkTarget(target); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "testkit-psamp-")
	if err != nil {
		return 0, fmt.Errorf("testkit: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "psamp_export.py")
	if err := os.WriteFile(script, psampExport, 0o644); err != nil {
		return 0, err
	}
	pcap, err = filepath.Abs(pcap)
	if err != nil {
		return 0, fmt.Errorf("testkit: pcap path: %w", err)
	}
	ap := netip.MustParseAddrPort(target)
	out, err := run(ctx, dir, systemPython, script, pcap, ap.Addr().String(), fmt.Sprint(ap.Port()), fmt.Sprint(n), fmt.Sprint(snaplen))
	if err != nil {
		return 0, err
	}
	var records, messages int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "exported %d records in %d messages", &records, &messages); err != nil {
		return 0, fmt.Errorf("testkit: psamp_export.py said %q: %w", out, err)
	}
	return records, nil
}
