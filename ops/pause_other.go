//go:build !amd64

package ops

// procyield is a no-op poll interval where there is no PAUSE to call.
func procyield() {}
