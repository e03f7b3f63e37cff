#include "textflag.h"

// func procyield()
// One PAUSE: a spinning worker's poll interval, and a hint to the core
// that this is a spin loop.
TEXT ·procyield(SB), NOSPLIT, $0-0
	PAUSE
	RET
