package ops

// procyield executes one PAUSE instruction (pause_amd64.s).
func procyield()
