package kernels

import _ "embed"

// The PTX modules gen.sh compiles from the *.cu sources (see ptx/STAMP).
var (
	//go:embed ptx/kernels_70.ptx
	ptx70 []byte
	//go:embed ptx/kernels_80.ptx
	ptx80 []byte
	//go:embed ptx/STAMP
	ptxStamp string
)
