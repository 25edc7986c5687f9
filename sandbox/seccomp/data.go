package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// Data is struct seccomp_data, the input of a seccomp filter: the syscall
// number, the audit arch, the instruction pointer and the six argument
// registers, each as the full 64-bit register.
type Data struct {
	Nr   int32
	Arch Arch
	IP   uint64
	Args [6]uint64
}

// VMInput returns d encoded for golang.org/x/net/bpf's VM so that a program
// built by this package sees exactly what the kernel would show it on a
// little-endian machine (amd64, arm64).
//
// The kernel lays seccomp_data out in host byte order and its BPF_LD|BPF_W
// loads a 32-bit word at offset k in host order: on little-endian machines
// offset 16+8i holds the low half of args[i] and 20+8i the high half. The x/net
// VM instead decodes every 32-bit load big-endian. So each 32-bit word is
// written big-endian at the offset where the kernel keeps it: the low half of
// a 64-bit field at the lower offset, the high half four bytes above.
// Encoding the whole struct big-endian would swap the halves and silently
// test the wrong argument bits.
func (d Data) VMInput() []byte {
	b := make([]byte, seccompData)
	be := binary.BigEndian
	be.PutUint32(b[offNr:], uint32(d.Nr))
	be.PutUint32(b[offArch:], uint32(d.Arch))
	be.PutUint32(b[offIP:], uint32(d.IP))
	be.PutUint32(b[offIP+4:], uint32(d.IP>>32))
	for i, a := range d.Args {
		be.PutUint32(b[offArgs+8*i:], uint32(a))
		be.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	return b
}

// Run executes prog on d in golang.org/x/net/bpf's VM (see [Data.VMInput])
// and returns the action. It is for tests and for explaining a filter without
// loading it; the VM is not the kernel's interpreter.
func Run(prog []bpf.RawInstruction, d Data) (Action, error) {
	vm, err := newVM(prog)
	if err != nil {
		return 0, err
	}
	return vm.run(d)
}

type vmRunner struct{ vm *bpf.VM }

func newVM(prog []bpf.RawInstruction) (vmRunner, error) {
	insns, ok := bpf.Disassemble(prog)
	if !ok {
		return vmRunner{}, fmt.Errorf("seccomp: run filter: program has instructions the VM cannot decode")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return vmRunner{}, fmt.Errorf("seccomp: run filter: %w", err)
	}
	return vmRunner{vm}, nil
}

func (r vmRunner) run(d Data) (Action, error) {
	v, err := r.vm.Run(d.VMInput())
	if err != nil {
		return 0, fmt.Errorf("seccomp: run filter: %w", err)
	}
	return Action(uint32(v)), nil
}
