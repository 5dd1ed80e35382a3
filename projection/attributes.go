package projection

import (
	"bytes"
	"encoding/json"
	"slices"
)

// DecodeAttributes decodes the top-level attributes names of the stored
// document doc, as json.Unmarshal into a map[string]any decodes them, and
// passes over the others without decoding them: for a caller that needs a
// few attributes of a large document, such as a read decision whose grant
// filters look at _type (see authz.GrantSet.ReadAttributes). Attributes the
// document does not have are not in the map.
//
// ok is false when doc is not an object written as the store writes
// documents (compact JSON, nesting of at most 32 levels): the caller then
// decodes the whole document. The values passed over are checked only for
// balanced brackets and quotes; a stored document that is not JSON is
// found by verification (Verify), not here.
func DecodeAttributes(doc []byte, names []string) (attrs map[string]any, ok bool) {
	s := scanner{b: doc}
	if !s.byte('{') {
		return nil, false
	}
	attrs = make(map[string]any, len(names))
	if s.byte('}') {
		return attrs, s.i == len(s.b)
	}
	for {
		quoted, ok := s.string()
		if !ok || !s.byte(':') {
			return nil, false
		}
		name, want, ok := wanted(quoted, names)
		if !ok {
			return nil, false
		}
		v, ok := s.value()
		if !ok {
			return nil, false
		}
		if want {
			x, ok := decodeValue(v)
			if !ok {
				return nil, false
			}
			attrs[name] = x // a repeated name keeps its last value, as json.Unmarshal does
		}
		if s.byte('}') {
			return attrs, s.i == len(s.b)
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// wanted reports whether the member name quoted (with its quotes) is one
// of names, and which. A name without escapes is compared as it is, without
// a copy; ok is false for a name that is not a JSON string.
func wanted(quoted []byte, names []string) (name string, want, ok bool) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		raw := quoted[1 : len(quoted)-1]
		for _, n := range names {
			if n == string(raw) {
				return n, true, true
			}
		}
		return "", false, true
	}
	x, ok := decodeValue(quoted)
	if !ok {
		return "", false, false
	}
	name = x.(string)
	return name, slices.Contains(names, name), true
}

// decodeValue decodes one JSON value: a string of printable ASCII without
// escapes directly, anything else with encoding/json.
func decodeValue(v []byte) (any, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		plain := true
		for _, c := range v[1 : len(v)-1] {
			if c < 0x20 || c >= 0x80 || c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(v[1 : len(v)-1]), true
		}
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, false
	}
	return x, true
}
