package groq

import (
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// objVal is a GROQ object inside CEL: a read-only view of a
// map[string]any whose attributes are converted only when read.
type objVal struct{ m map[string]any }

var _ traits.Mapper = (*objVal)(nil)

func (o *objVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(o.m).AssignableTo(t) {
		return o.m, nil
	}
	return nil, errUnsupported
}

func (o *objVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return o
	}
	return types.NewErr("groq: no conversion of an object to %v", t)
}

// Equal is CEL's ==, unused by the translation (GROQ objects are never
// equal); identity is enough.
func (o *objVal) Equal(other ref.Val) ref.Val {
	oo, ok := other.(*objVal)
	return types.Bool(ok && reflect.ValueOf(oo.m).UnsafePointer() == reflect.ValueOf(o.m).UnsafePointer())
}

func (o *objVal) Type() ref.Type { return types.MapType }
func (o *objVal) Value() any     { return o.m }

func (o *objVal) Contains(key ref.Val) ref.Val {
	_, found := o.Find(key)
	return types.Bool(found)
}

func (o *objVal) Get(key ref.Val) ref.Val {
	v, found := o.Find(key)
	if !found {
		return types.NullValue
	}
	return v
}

func (o *objVal) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	v, found := o.m[string(k)]
	if !found {
		return nil, false
	}
	return theAdapter.NativeToValue(v), true
}

func (o *objVal) Size() ref.Val { return types.Int(len(o.m)) }

func (o *objVal) Iterator() traits.Iterator {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	return &keyIterator{keys: keys}
}

type keyIterator struct {
	keys []string
	i    int
}

func (it *keyIterator) ConvertToNative(reflect.Type) (any, error) { return nil, errUnsupported }
func (it *keyIterator) ConvertToType(ref.Type) ref.Val            { return types.NewErr("no conversion") }
func (it *keyIterator) Equal(ref.Val) ref.Val                     { return types.False }
func (it *keyIterator) Type() ref.Type                            { return types.IteratorType }
func (it *keyIterator) Value() any                                { return nil }
func (it *keyIterator) HasNext() ref.Val                          { return types.Bool(it.i < len(it.keys)) }
func (it *keyIterator) Next() ref.Val {
	if it.i >= len(it.keys) {
		return types.NewErr("iterator exhausted")
	}
	k := it.keys[it.i]
	it.i++
	return types.String(k)
}
