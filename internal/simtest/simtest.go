// Package simtest is the TestMain of the packages whose tests run CUDA
// kernels on the PTX simulator (kernels, ops/cuda): the simulator writes
// checkpoint_files/ and temporary _N.ptx files into the working directory
// and prints through C stdio, so the tests run in a temporary directory
// with the simulator's stdout in a log, shown when a test fails.
package simtest

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Main runs m inside a fresh temporary directory (named after prefix) and
// returns its exit code. Unless LADDER_PTXSIM_STDOUT=1, file descriptor 1
// (where the simulator's C stdio writes) goes to a log, and on failure the
// log's last 40 lines are printed.
func Main(m *testing.M, prefix string) int {
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := os.Chdir(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var simLog string
	if os.Getenv("LADDER_PTXSIM_STDOUT") != "1" {
		// The test framework prints through os.Stdout, captured when m.Run
		// starts: give it a copy of fd 1, then point fd 1 at the log.
		simLog = tmp + "/ptxsim.log"
		if f, err := os.Create(simLog); err == nil {
			if saved, err := unix.Dup(1); err == nil {
				os.Stdout = os.NewFile(uintptr(saved), "/dev/stdout")
				_ = unix.Dup2(int(f.Fd()), 1)
			}
			defer f.Close()
		}
	}
	code := m.Run()
	if code != 0 && simLog != "" {
		// A failure may come from the simulator (a PTX parse error aborts it).
		if b, err := os.ReadFile(simLog); err == nil && len(b) > 0 {
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			fmt.Fprintf(os.Stdout, "--- last lines of the simulator's output (%s):\n%s\n", simLog, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}
	return code
}
