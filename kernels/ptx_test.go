package kernels

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestPTXFresh fails when a CUDA source or gen.sh changed (or a source was
// added or removed) since the committed PTX was generated: ptx/STAMP holds
// the sha256 of each, and of the PTX written. Needs no nvcc.
func TestPTXFresh(t *testing.T) {
	stamped := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(ptxStamp))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("ptx/STAMP: bad line %q", line)
		}
		stamped[name] = sum
	}
	var sources []string
	for _, pat := range []string{"*.cu", "*.cuh"} {
		m, _ := filepath.Glob(filepath.Join(srcDir, pat))
		sources = append(sources, m...)
	}
	sources = append(sources, filepath.Join(srcDir, "gen.sh"))
	sort.Strings(sources)
	seen := map[string]bool{}
	for _, p := range sources {
		name := filepath.Base(p)
		seen[name] = true
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256hex(b); stamped[name] != got {
			t.Errorf("%s changed since the PTX was generated (stamp %q, now %s): run kernels/gen.sh and commit kernels/ptx", name, stamped[name], got)
		}
	}
	for name := range stamped {
		if !strings.HasPrefix(name, "ptx/") && !seen[name] {
			t.Errorf("ptx/STAMP lists %s, which is gone: run kernels/gen.sh", name)
		}
	}
	for name, b := range map[string][]byte{"ptx/kernels_70.ptx": ptx70, "ptx/kernels_80.ptx": ptx80} {
		if got := sha256hex(b); stamped[name] != got {
			t.Errorf("%s is not what gen.sh wrote (stamp %q, now %s)", name, stamped[name], got)
		}
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPTXAssembles runs ptxas on the modules for the GPUs they target:
// compute_70 for sm_70, compute_80 for sm_80 and sm_90. Skipped without
// ptxas (CUDA toolkit).
func TestPTXAssembles(t *testing.T) {
	ptxas, err := exec.LookPath("ptxas")
	if err != nil {
		t.Skip("ptxas not on PATH")
	}
	for _, c := range []struct{ file, sm string }{
		{"kernels_70.ptx", "sm_70"}, {"kernels_80.ptx", "sm_80"}, {"kernels_80.ptx", "sm_90"},
	} {
		out, err := exec.Command(ptxas, "-arch="+c.sm, filepath.Join(srcDir, "ptx", c.file), "-o", filepath.Join(t.TempDir(), "k.cubin")).CombinedOutput()
		if err != nil {
			t.Errorf("ptxas -arch=%s %s: %v\n%s", c.sm, c.file, err, out)
		}
	}
}
