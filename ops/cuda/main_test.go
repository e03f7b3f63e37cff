package cuda_test

import (
	"math"
	"os"
	"sync"
	"testing"

	"ladder-engine/engine"
	"ladder-engine/internal/fixtures"
	"ladder-engine/internal/simtest"
	"ladder-engine/ops"
	"ladder-engine/ops/cuda"
)

// The tests run on the PTX simulator (../shared/ptxsim, a fixture: skipped
// when missing, failing under CI=true) unless LADDER_CUDA_TEST_DEVICE=real
// (tools/gpu-check.sh on a GPU: the system's driver). As in kernels'
// tests, TestMain moves the process into a temporary directory (the
// simulator writes checkpoint_files/ there) and sends the simulator's
// stdout to a log, shown when a test fails.

func TestMain(m *testing.M) { os.Exit(simtest.Main(m, "cuda-test-")) }

var (
	openOnce sync.Once
	openErr  error
)

// realDevice is set by tools/gpu-check.sh: test the driver the
// environment names (LADDER_CUDA_LIB, else the system's).
func realDevice() bool { return os.Getenv("LADDER_CUDA_TEST_DEVICE") == "real" }

// fullSize (LADDER_CUDA_TEST_FULL=1, set by tools/gpu-check.sh) runs the
// model tests at the sizes: perplexity at -c 64, 16 greedy tokens,
// finetunes at -c 32 --batch 2. The simulator interprets about 3.5M
// instructions a second on one core: a training step at -c 32 --batch 2
// takes about 250M (70 s), perplexity at -c 64 over 2 chunks about 2
// minutes, one decoded token about 13M (the mat-vec kernel's warp sums on
// 64-wide rows), so the normal suite runs perplexity at -c 16, 4 greedy
// tokens and finetunes at -c 8 --batch 2.
func fullSize() bool { return os.Getenv("LADDER_CUDA_TEST_FULL") == "1" }

// newBackend returns a backend on device 0: the simulator's, or the
// system's on a GPU machine.
func newBackend(t testing.TB) *cuda.Backend {
	t.Helper()
	if !realDevice() {
		lib := fixtures.Path(t, "ptxsim/libcuda.so.1")
		cfg := fixtures.Path(t, "ptxsim/gpgpusim.config")
		openOnce.Do(func() {
			os.Setenv("LADDER_CUDA_LIB", lib)
			os.Setenv("GPGPUSIM_CONFIG_FILE", cfg)
		})
	}
	be, err := cuda.New(0)
	if err != nil {
		t.Fatalf("open the CUDA device: %v", err)
	}
	return be
}

const storiesPath = "models/stories260K/stories260K.gguf"

// loadBoth loads stories260K on the CPU and on the device.
func loadBoth(t testing.TB) (cpu, dev *engine.Model) {
	t.Helper()
	be := newBackend(t)
	path := fixtures.Path(t, storiesPath)
	cpu, err := engine.Load(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpu.Close() })
	dev, err = engine.LoadOn(path, 2, func(*ops.Pool) ops.Backend { return be })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return cpu, dev
}

// maxRel is the largest |a−b| / max(|b|, floor) over the values, and where.
func maxRel(a, b []float32, floor float64) (float64, int) {
	worst, at := 0.0, -1
	for i := range b {
		d := math.Abs(float64(a[i])-float64(b[i])) / math.Max(math.Abs(float64(b[i])), floor)
		if math.IsNaN(d) || d > worst {
			worst, at = d, i
			if math.IsNaN(d) {
				return math.Inf(1), i
			}
		}
	}
	return worst, at
}
