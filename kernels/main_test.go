package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"ladder-engine/internal/fixtures"
	"ladder-engine/internal/simtest"
)

// srcDir is the package directory: TestMain moves the process into a
// temporary directory, because the simulator writes checkpoint_files/ and
// temporary _N.ptx files into the working directory.
var srcDir string

func TestMain(m *testing.M) {
	var err error
	if srcDir, err = os.Getwd(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(simtest.Main(m, "kernels-test-"))
}

var (
	simOnce sync.Once
	simDev  *Device
	simErr  error
)

// device returns the process's one simulated device, opened on first use;
// the test is skipped when the simulator fixture is missing (and fails
// under CI=true).
//
// With LADDER_CUDA_TEST_DEVICE=real (tools/gpu-check.sh on a GPU machine)
// it opens the system's driver instead.
func device(t testing.TB) *Device {
	t.Helper()
	if os.Getenv("LADDER_CUDA_TEST_DEVICE") == "real" {
		simOnce.Do(func() { simDev, simErr = Open(0) })
	} else {
		lib := fixtures.Path(t, "ptxsim/libcuda.so.1")
		cfg := fixtures.Path(t, "ptxsim/gpgpusim.config")
		simOnce.Do(func() {
			os.Setenv("LADDER_CUDA_LIB", lib)
			os.Setenv("GPGPUSIM_CONFIG_FILE", cfg)
			simDev, simErr = Open(0)
		})
	}
	if simErr != nil {
		t.Fatalf("open the simulated device: %v", simErr)
	}
	return simDev
}

// upload copies values to a new device buffer, freed at the end of the test.
func upload(t testing.TB, d *Device, v []float32) Buffer {
	t.Helper()
	b := alloc(t, d, 4*len(v))
	if err := d.WriteF32(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func uploadI32(t testing.TB, d *Device, v []int32) Buffer {
	t.Helper()
	b := alloc(t, d, 4*len(v))
	if err := d.WriteI32(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func uploadBytes(t testing.TB, d *Device, v []byte) Buffer {
	t.Helper()
	b := alloc(t, d, len(v))
	if err := d.Write(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func alloc(t testing.TB, d *Device, n int) Buffer {
	t.Helper()
	b, err := d.Alloc(int64(max(n, 4)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(b) })
	return b
}

func download(t testing.TB, d *Device, b Buffer, n int) []float32 {
	t.Helper()
	v := make([]float32, n)
	if err := d.ReadF32(v, b); err != nil {
		t.Fatal(err)
	}
	return v
}

func randF32(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*r.Float32() - 1) * scale
	}
	return v
}

// within fails the test at the first value where |got-want| > atol +
// rtol·|want|, naming the index.
func within(t *testing.T, what string, got, want []float32, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.Abs(g-w) > atol+rtol*math.Abs(w) {
			t.Fatalf("%s[%d] = %g, want %g (rtol %g, atol %g)", what, i, g, w, rtol, atol)
		}
	}
}

// bitExact fails at the first value whose bits differ.
func bitExact(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g (%#08x), want %g (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func TestOpenReportsPathsTried(t *testing.T) {
	t.Setenv("LADDER_CUDA_LIB", "/nonexistent/libcuda.so.1")
	_, err := openDriver(libraryPaths())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/libcuda.so.1") {
		t.Fatalf("openDriver = %v, want an error naming /nonexistent/libcuda.so.1", err)
	}
}

func TestDeviceBasics(t *testing.T) {
	d := device(t)
	if maj, _ := d.ComputeCapability(); maj < 7 || d.Arch() != 70 && d.Arch() != 80 {
		t.Fatalf("capability %d, module compute_%d", maj, d.Arch())
	}
	free, total, err := d.MemInfo()
	if err != nil || free <= 0 || total < free {
		t.Fatalf("MemInfo = %d, %d, %v", free, total, err)
	}
	b := alloc(t, d, 64)
	if err := d.Fill32(b, math.Float32bits(1.5), 16); err != nil {
		t.Fatal(err)
	}
	c := alloc(t, d, 64)
	if err := d.Copy(c, b, 64); err != nil {
		t.Fatal(err)
	}
	for i, v := range download(t, d, c, 16) {
		if v != 1.5 {
			t.Fatalf("value %d = %g after fill and copy, want 1.5", i, v)
		}
	}
	if err := d.launch("no_such_kernel", dim3{1, 1, 1}, dim3{1, 1, 1}, 0); err == nil || !strings.Contains(err.Error(), "no_such_kernel") {
		t.Fatalf("launch of a missing kernel: %v", err)
	}
	if err := d.Write(b, make([]byte, 65)); err == nil {
		t.Fatal("write past the end of a buffer: no error")
	}
	// A bad module choice is refused before a second context is made.
	t.Setenv("LADDER_CUDA_PTX", "75")
	if _, err := Open(0); err == nil || !strings.Contains(err.Error(), "LADDER_CUDA_PTX") {
		t.Fatalf("Open with LADDER_CUDA_PTX=75: %v", err)
	}
}
