package gguf

import "fmt"

// FileType is llama.cpp's llama_ftype, stored as u32 in general.file_type:
// the predominant tensor type of a model ("mostly Q4_0").
type FileType uint32

const (
	FileTypeAllF32    FileType = 0
	FileTypeMostlyF16 FileType = 1
	FileTypeQ4_0      FileType = 2
	FileTypeQ4_1      FileType = 3
	FileTypeQ8_0      FileType = 7
	FileTypeQ5_0      FileType = 8
	FileTypeQ5_1      FileType = 9
	FileTypeQ2_K      FileType = 10
	FileTypeQ3_K_S    FileType = 11
	FileTypeQ3_K_M    FileType = 12
	FileTypeQ3_K_L    FileType = 13
	FileTypeQ4_K_S    FileType = 14
	FileTypeQ4_K_M    FileType = 15
	FileTypeQ5_K_S    FileType = 16
	FileTypeQ5_K_M    FileType = 17
	FileTypeQ6_K      FileType = 18
	FileTypeIQ4_NL    FileType = 25
	FileTypeIQ4_XS    FileType = 30
	FileTypeBF16      FileType = 32
)

// fileTypeNames are llama_model_ftype_name's strings (llama.cpp c392e509).
var fileTypeNames = map[FileType]string{
	0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "Q4_1, some F16",
	7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K - Medium", 11: "Q3_K - Small",
	12: "Q3_K - Medium", 13: "Q3_K - Large", 14: "Q4_K - Small", 15: "Q4_K - Medium",
	16: "Q5_K - Small", 17: "Q5_K - Medium", 18: "Q6_K", 19: "IQ2_XXS - 2.0625 bpw",
	20: "IQ2_XS - 2.3125 bpw", 21: "Q2_K - Small", 22: "IQ3_XS - 3.3 bpw",
	23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw", 25: "IQ4_NL - 4.5 bpw",
	26: "IQ3_S - 3.4375 bpw", 27: "IQ3_S mix - 3.66 bpw", 28: "IQ2_S - 2.5 bpw",
	29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw", 31: "IQ1_M - 1.75 bpw",
	32: "BF16", 36: "TQ1_0 - 1.69 bpw ternary", 37: "TQ2_0 - 2.06 bpw ternary",
}

// String returns llama.cpp's description ("Q4_K - Medium"); llama.cpp marks
// a guessed type with bit 10 set.
func (ft FileType) String() string {
	const guessed = 1024
	if s, ok := fileTypeNames[ft&^guessed]; ok {
		if ft&guessed != 0 {
			return s + " (guessed)"
		}
		return s
	}
	return fmt.Sprintf("unknown file type %d", uint32(ft))
}

// FileTypeFor returns the file type whose main weight type is t, as
// llama-quantize names them (the K-quants' "_M" mixes: Q4_K → Q4_K_M);
// false when llama.cpp has no such file type.
func FileTypeFor(t Type) (FileType, bool) {
	switch t {
	case TypeF32:
		return FileTypeAllF32, true
	case TypeF16:
		return FileTypeMostlyF16, true
	case TypeBF16:
		return FileTypeBF16, true
	case TypeQ4_0:
		return FileTypeQ4_0, true
	case TypeQ4_1:
		return FileTypeQ4_1, true
	case TypeQ5_0:
		return FileTypeQ5_0, true
	case TypeQ5_1:
		return FileTypeQ5_1, true
	case TypeQ8_0:
		return FileTypeQ8_0, true
	case TypeQ2_K:
		return FileTypeQ2_K, true
	case TypeQ3_K:
		return FileTypeQ3_K_M, true
	case TypeQ4_K:
		return FileTypeQ4_K_M, true
	case TypeQ5_K:
		return FileTypeQ5_K_M, true
	case TypeQ6_K:
		return FileTypeQ6_K, true
	case TypeIQ4_NL:
		return FileTypeIQ4_NL, true
	case TypeIQ4_XS:
		return FileTypeIQ4_XS, true
	}
	return 0, false
}
