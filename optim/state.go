package optim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
)

// Checkpoint layout of optimizer state, all little-endian:
//
//	magic "LEOPTIM1"
//	kind string          ("adamw", "sgd")
//	steps u64
//	nparams u32
//	per parameter: name string, n u64, then the optimizer's own payload
//	crc32 (IEEE) of every byte before it
//
// A string is a u32 length and its bytes. Parameters are matched by position
// and checked by name and size, so a checkpoint never loads into the wrong
// tensor silently.
const stateMagic = "LEOPTIM1"

// maxStateString bounds names read from a file so a corrupt length cannot
// make us allocate gigabytes.
const maxStateString = 1 << 16

type stateWriter struct {
	bw  *bufio.Writer
	crc hash.Hash32
	buf [8]byte
	err error
}

func newStateWriter(w io.Writer) *stateWriter {
	return &stateWriter{bw: bufio.NewWriterSize(w, 1<<16), crc: crc32.NewIEEE()}
}

func (s *stateWriter) bytes(b []byte) {
	if s.err != nil {
		return
	}
	s.crc.Write(b)
	_, s.err = s.bw.Write(b)
}

func (s *stateWriter) u8(v uint8) { s.bytes([]byte{v}) }
func (s *stateWriter) u32(v uint32) {
	binary.LittleEndian.PutUint32(s.buf[:4], v)
	s.bytes(s.buf[:4])
}
func (s *stateWriter) u64(v uint64) {
	binary.LittleEndian.PutUint64(s.buf[:8], v)
	s.bytes(s.buf[:8])
}
func (s *stateWriter) str(v string) {
	s.u32(uint32(len(v)))
	s.bytes([]byte(v))
}

// f32s writes a float32 slice in chunks so a large state needs no full copy.
func (s *stateWriter) f32s(v []float32) {
	var chunk [4096]byte
	for len(v) > 0 && s.err == nil {
		n := min(len(v), len(chunk)/4)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(x))
		}
		s.bytes(chunk[:4*n])
		v = v[n:]
	}
}

// finish appends the checksum and flushes.
func (s *stateWriter) finish() error {
	if s.err != nil {
		return fmt.Errorf("optim: writing state: %w", s.err)
	}
	binary.LittleEndian.PutUint32(s.buf[:4], s.crc.Sum32())
	if _, err := s.bw.Write(s.buf[:4]); err != nil {
		return fmt.Errorf("optim: writing state: %w", err)
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("optim: writing state: %w", err)
	}
	return nil
}

type stateReader struct {
	br  *bufio.Reader
	crc hash.Hash32
	off int64 // bytes consumed, for error messages
	buf [8]byte
	err error
}

func newStateReader(r io.Reader) *stateReader {
	return &stateReader{br: bufio.NewReaderSize(r, 1<<16), crc: crc32.NewIEEE()}
}

func (s *stateReader) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("optim: state at byte %d: %s", s.off, fmt.Sprintf(format, args...))
	}
}

func (s *stateReader) bytes(b []byte) {
	if s.err != nil {
		return
	}
	n, err := io.ReadFull(s.br, b)
	s.crc.Write(b[:n])
	s.off += int64(n)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			s.fail("truncated (need %d more bytes)", len(b)-n)
		} else {
			s.fail("%v", err)
		}
	}
}

func (s *stateReader) u8() uint8 {
	s.bytes(s.buf[:1])
	return s.buf[0]
}
func (s *stateReader) u32() uint32 {
	s.bytes(s.buf[:4])
	return binary.LittleEndian.Uint32(s.buf[:4])
}
func (s *stateReader) u64() uint64 {
	s.bytes(s.buf[:8])
	return binary.LittleEndian.Uint64(s.buf[:8])
}
func (s *stateReader) str() string {
	n := s.u32()
	if s.err != nil {
		return ""
	}
	if n > maxStateString {
		s.fail("string length %d too large", n)
		return ""
	}
	b := make([]byte, n)
	s.bytes(b)
	return string(b)
}

func (s *stateReader) f32s(v []float32) {
	var chunk [4096]byte
	for len(v) > 0 && s.err == nil {
		n := min(len(v), len(chunk)/4)
		s.bytes(chunk[:4*n])
		for i := range v[:n] {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
		}
		v = v[n:]
	}
}

// header reads and checks magic, kind and the parameter table against params,
// returning the step count. Payloads follow; readParam checks each header.
func (s *stateReader) header(kind string, params []*Param) uint64 {
	var magic [len(stateMagic)]byte
	s.bytes(magic[:])
	if s.err == nil && string(magic[:]) != stateMagic {
		s.fail("not optimizer state (magic %q, want %q)", magic[:], stateMagic)
	}
	if k := s.str(); s.err == nil && k != kind {
		s.fail("state is for optimizer %q, this one is %q", k, kind)
	}
	steps := s.u64()
	if n := s.u32(); s.err == nil && int(n) != len(params) {
		s.fail("state has %d parameters, optimizer has %d", n, len(params))
	}
	return steps
}

// param checks the name and size that precede a parameter's payload.
func (s *stateReader) param(p *Param) {
	name := s.str()
	n := s.u64()
	if s.err != nil {
		return
	}
	if name != p.Name {
		s.fail("parameter %q where %q was expected (different model or parameter order)", name, p.Name)
	} else if n != uint64(len(p.Data)) {
		s.fail("parameter %q has %d values in the state, %d in the model", name, n, len(p.Data))
	}
}

// finish checks the checksum.
func (s *stateReader) finish() error {
	if s.err != nil {
		return s.err
	}
	want := s.crc.Sum32()
	var b [4]byte
	if _, err := io.ReadFull(s.br, b[:]); err != nil {
		return fmt.Errorf("optim: state at byte %d: missing checksum", s.off)
	}
	if got := binary.LittleEndian.Uint32(b[:]); got != want {
		return fmt.Errorf("optim: state checksum mismatch (file %08x, computed %08x): the file is corrupt", got, want)
	}
	return nil
}
