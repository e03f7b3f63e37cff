package gguf

import (
	"fmt"
	"strings"
)

// Type is a ggml tensor element type (enum ggml_type). The ids are part of the
// GGUF file format, so they never change.
type Type uint32

// ggml_type ids (ggml.h). Ids 4, 5 and 31..33, 36..38 were removed from ggml
// and have no entry.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
)

// QK_K is the super-block size of the K-quants and IQ4_XS (ggml-common.h).
const QK_K = 256

// typeTraits is one row of the type registry, like ggml's type_traits table:
// the layout of a block, and the codec when we have one. decode and encode
// work on whole blocks (len(dst) or len(src) a multiple of blockSize, the
// byte slice exactly the matching number of blocks).
type typeTraits struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
	decode    func(src []byte, dst []float32)
	encode    func(src []float32, dst []byte)
}

// typeTable lists every type ggml knows at llama.cpp c392e509, with the block
// layouts of ggml-common.h; the codecs live in one file per type family.
var typeTable = [...]typeTraits{
	TypeF32:     {name: "f32", blockSize: 1, typeSize: 4, decode: decodeF32, encode: encodeF32},
	TypeF16:     {name: "f16", blockSize: 1, typeSize: 2, decode: decodeF16, encode: encodeF16},
	TypeBF16:    {name: "bf16", blockSize: 1, typeSize: 2, decode: decodeBF16, encode: encodeBF16},
	TypeQ4_0:    {name: "q4_0", blockSize: 32, typeSize: blockQ4_0, decode: decodeQ4_0, encode: encodeQ4_0},
	TypeQ4_1:    {name: "q4_1", blockSize: 32, typeSize: blockQ4_1, decode: decodeQ4_1, encode: encodeQ4_1},
	TypeQ5_0:    {name: "q5_0", blockSize: 32, typeSize: blockQ5_0, decode: decodeQ5_0, encode: encodeQ5_0},
	TypeQ5_1:    {name: "q5_1", blockSize: 32, typeSize: blockQ5_1, decode: decodeQ5_1, encode: encodeQ5_1},
	TypeQ8_0:    {name: "q8_0", blockSize: 32, typeSize: blockQ8_0, decode: decodeQ8_0, encode: encodeQ8_0},
	TypeQ8_1:    {name: "q8_1", blockSize: 32, typeSize: blockQ8_1, decode: decodeQ8_1, encode: encodeQ8_1},
	TypeQ2_K:    {name: "q2_K", blockSize: QK_K, typeSize: blockQ2_K, decode: decodeQ2_K, encode: encodeQ2_K},
	TypeQ3_K:    {name: "q3_K", blockSize: QK_K, typeSize: blockQ3_K, decode: decodeQ3_K, encode: encodeQ3_K},
	TypeQ4_K:    {name: "q4_K", blockSize: QK_K, typeSize: blockQ4_K, decode: decodeQ4_K, encode: encodeQ4_K},
	TypeQ5_K:    {name: "q5_K", blockSize: QK_K, typeSize: blockQ5_K, decode: decodeQ5_K, encode: encodeQ5_K},
	TypeQ6_K:    {name: "q6_K", blockSize: QK_K, typeSize: blockQ6_K, decode: decodeQ6_K, encode: encodeQ6_K},
	TypeQ8_K:    {name: "q8_K", blockSize: QK_K, typeSize: blockQ8_K, decode: decodeQ8_K, encode: encodeQ8_K},
	TypeIQ2_XXS: {name: "iq2_xxs", blockSize: QK_K, typeSize: 66},
	TypeIQ2_XS:  {name: "iq2_xs", blockSize: QK_K, typeSize: 74},
	TypeIQ3_XXS: {name: "iq3_xxs", blockSize: QK_K, typeSize: 98},
	TypeIQ1_S:   {name: "iq1_s", blockSize: QK_K, typeSize: 50},
	TypeIQ4_NL:  {name: "iq4_nl", blockSize: 32, typeSize: blockIQ4_NL, decode: decodeIQ4_NL, encode: encodeIQ4_NL},
	TypeIQ3_S:   {name: "iq3_s", blockSize: QK_K, typeSize: 110},
	TypeIQ2_S:   {name: "iq2_s", blockSize: QK_K, typeSize: 82},
	TypeIQ4_XS:  {name: "iq4_xs", blockSize: QK_K, typeSize: blockIQ4_XS, decode: decodeIQ4_XS, encode: encodeIQ4_XS},
	TypeI8:      {name: "i8", blockSize: 1, typeSize: 1},
	TypeI16:     {name: "i16", blockSize: 1, typeSize: 2},
	TypeI32:     {name: "i32", blockSize: 1, typeSize: 4},
	TypeI64:     {name: "i64", blockSize: 1, typeSize: 8},
	TypeF64:     {name: "f64", blockSize: 1, typeSize: 8},
	TypeIQ1_M:   {name: "iq1_m", blockSize: QK_K, typeSize: 56},
	TypeTQ1_0:   {name: "tq1_0", blockSize: QK_K, typeSize: 54},
	TypeTQ2_0:   {name: "tq2_0", blockSize: QK_K, typeSize: 66},
}

// traitsOf returns the registry row of t, or nil for an id ggml does not define.
func traitsOf(t Type) *typeTraits {
	if uint64(t) >= uint64(len(typeTable)) || typeTable[t].name == "" {
		return nil
	}
	return &typeTable[t]
}

// String returns ggml's name for the type ("f32", "q4_K", "iq4_nl"), or
// "type(N)" for an id ggml does not define.
func (t Type) String() string {
	if tr := traitsOf(t); tr != nil {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// ParseType accepts ggml's type names case-insensitively ("Q4_K", "q4_k", "f16").
func ParseType(name string) (Type, error) {
	for t := range typeTable {
		if tr := &typeTable[t]; tr.name != "" && strings.EqualFold(tr.name, name) {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("gguf: unknown tensor type %q", name)
}

// BlockSize is the number of elements per block (1 for F32/F16/BF16), 0 if
// the type is unknown.
func (t Type) BlockSize() int {
	if tr := traitsOf(t); tr != nil {
		return tr.blockSize
	}
	return 0
}

// TypeSize is the number of bytes per block, 0 if the type is unknown.
func (t Type) TypeSize() int {
	if tr := traitsOf(t); tr != nil {
		return tr.typeSize
	}
	return 0
}

// RowSize is the number of bytes of a row of n elements (ggml_row_size).
func RowSize(t Type, n int) (int, error) {
	tr := traitsOf(t)
	if tr == nil {
		return 0, fmt.Errorf("gguf: unknown tensor type %s", t)
	}
	if n < 0 || n%tr.blockSize != 0 {
		return 0, fmt.Errorf("gguf: %s: row of %d elements is not a multiple of the block size %d", t, n, tr.blockSize)
	}
	return n / tr.blockSize * tr.typeSize, nil
}

// CanQuantize reports whether Quantize supports t.
func CanQuantize(t Type) bool {
	tr := traitsOf(t)
	return tr != nil && tr.encode != nil
}

// CanDequantize reports whether Dequantize supports t.
func CanDequantize(t Type) bool {
	tr := traitsOf(t)
	return tr != nil && tr.decode != nil
}

// Dequantize decodes whole blocks of type t from src into float32 values,
// bit-identical to ggml's to_float. len(dst) is the number of elements; it
// must be a multiple of the block size and src must hold exactly that many
// elements' bytes.
func Dequantize(t Type, src []byte, dst []float32) error {
	tr := traitsOf(t)
	if tr == nil {
		return fmt.Errorf("gguf: cannot dequantize unknown tensor type %s", t)
	}
	if tr.decode == nil {
		return fmt.Errorf("gguf: dequantizing tensor type %s is not supported", t)
	}
	need, err := RowSize(t, len(dst))
	if err != nil {
		return err
	}
	if len(src) != need {
		return fmt.Errorf("gguf: dequantize %s: %d elements need %d bytes, got %d", t, len(dst), need, len(src))
	}
	tr.decode(src, dst)
	return nil
}

// Quantize encodes src into whole blocks of type t with llama.cpp's reference
// rounding (quantize_row_*_ref, no importance matrix). len(src) must be a
// multiple of the block size and dst exactly the matching number of bytes.
func Quantize(t Type, src []float32, dst []byte) error {
	tr := traitsOf(t)
	if tr == nil {
		return fmt.Errorf("gguf: cannot quantize to unknown tensor type %s", t)
	}
	if tr.encode == nil {
		return fmt.Errorf("gguf: quantizing to tensor type %s is not supported", t)
	}
	need, err := RowSize(t, len(src))
	if err != nil {
		return err
	}
	if len(dst) != need {
		return fmt.Errorf("gguf: quantize %s: %d elements need %d bytes, got %d", t, len(src), need, len(dst))
	}
	tr.encode(src, dst)
	return nil
}
