package groq

import (
	"unsafe"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Zero-allocation conversion of document scalars to CEL values.
//
// A document attribute read from a map[string]any is an interface whose
// data word already points to the string (or float64) on the heap.
// types.String and types.Double have the same memory layout as string and
// float64, so the CEL value can reuse that data word with the CEL type's
// method table instead of copying the scalar into a new allocation. This
// removes the one allocation per attribute read that dominates filter
// evaluation. The layout assumption is verified once at start-up
// (boxingOK); if it ever fails, the ordinary conversion is used.

type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

var (
	stringTab = itabOf(types.String("x"))
	doubleTab = itabOf(types.Double(1.5))
	boxingOK  = checkBoxing()
)

func itabOf(v ref.Val) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

func rebox(tab unsafe.Pointer, a any) ref.Val {
	var v ref.Val
	p := (*eface)(unsafe.Pointer(&v))
	p.typ = tab
	p.data = (*eface)(unsafe.Pointer(&a)).data
	return v
}

// boxString returns types.String(s) for a that holds the string s.
func boxString(a any) ref.Val {
	if !boxingOK {
		return types.String(a.(string))
	}
	return rebox(stringTab, a)
}

// boxDouble returns types.Double(f) for a that holds the float64 f.
func boxDouble(a any) ref.Val {
	if !boxingOK {
		return types.Double(a.(float64))
	}
	return rebox(doubleTab, a)
}

func checkBoxing() bool {
	s := "layout check"
	f := 12345.678
	var as, af any = s, f
	v1 := rebox(stringTab, as)
	v2 := rebox(doubleTab, af)
	ts, ok1 := v1.(types.String)
	td, ok2 := v2.(types.Double)
	return ok1 && ok2 && string(ts) == s && float64(td) == f
}
