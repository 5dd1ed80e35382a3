package mutation

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes the transactions almost every client sends — creates
// of documents, and any other mutation through decodeMutation — in one pass
// over the bytes, without encoding/json's reflection and token machinery.
// It accepts only what the general decoder (decodeTransaction) accepts and
// returns the same Transaction; for anything else, valid or not, it returns
// ok false and the caller runs the general decoder, which also words the
// errors. FuzzDecodeFast checks that the two agree.
func decodeFast(data []byte) (*Transaction, bool) {
	p := fastParser{b: data}
	p.space()
	if !p.byte('{') {
		return nil, false
	}
	tx := &Transaction{}
	var seen [5]bool // mutations, transactionId, dryRun, returnIds, returnDocuments
	p.space()
	if p.byte('}') {
		return nil, false // no mutations
	}
	for {
		p.space()
		key, ok := p.plainString()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.byte(':') {
			return nil, false
		}
		p.space()
		field := -1
		switch string(key) {
		case "mutations":
			field = 0
			if seen[0] || !p.mutations(tx) {
				return nil, false
			}
		case "transactionId":
			field = 1
			s, ok := p.plainString()
			if !ok || len(s) == 0 {
				return nil, false
			}
			tx.TransactionID = string(s)
		case "dryRun", "returnIds", "returnDocuments":
			var b bool
			switch {
			case p.literal("true"):
				b = true
			case p.literal("false"):
			default:
				return nil, false
			}
			switch string(key) {
			case "dryRun":
				field, tx.DryRun = 2, b
			case "returnIds":
				field, tx.ReturnIDs = 3, b
			default:
				field, tx.ReturnDocuments = 4, b
			}
		default:
			return nil, false
		}
		if seen[field] {
			return nil, false
		}
		seen[field] = true
		p.space()
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return nil, false
		}
	}
	p.space()
	if p.i != len(p.b) || !seen[0] || len(tx.Mutations) == 0 {
		return nil, false
	}
	return tx, true
}

// mutations reads the mutations array into tx.
func (p *fastParser) mutations(tx *Transaction) bool {
	if !p.byte('[') {
		return false
	}
	p.space()
	if p.byte(']') {
		return true // empty: the caller rejects it
	}
	for i := 0; ; i++ {
		if i == MaxMutations {
			return false
		}
		p.space()
		start := p.i
		tx.Mutations = append(tx.Mutations, Mutation{})
		m := &tx.Mutations[i]
		if !p.mutation(i, m) {
			return false
		}
		m.Raw = bytes.Clone(p.b[start:p.i])
		p.space()
		if p.byte(']') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// mutation reads one mutation: a create of any kind directly, anything else
// through decodeMutation once its extent is known.
func (p *fastParser) mutation(i int, m *Mutation) bool {
	start := p.i
	if !p.byte('{') {
		return false
	}
	p.space()
	key, ok := p.plainString()
	if !ok {
		return false
	}
	kind := string(key)
	switch kind {
	case KindCreate, KindCreateOrReplace, KindCreateIfNotExists:
	default:
		p.i = start
		if !p.skipValue(0) {
			return false
		}
		return decodeMutation(i, json.RawMessage(p.b[start:p.i]), m) == nil
	}
	p.space()
	if !p.byte(':') {
		return false
	}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	v, ok := p.value(0)
	if !ok {
		return false
	}
	p.space()
	if !p.byte('}') {
		return false
	}
	doc := v.(map[string]any)
	if id, ok := doc["_id"]; ok {
		if _, isString := id.(string); !isString {
			return false
		}
	} else if kind != KindCreate {
		return false
	}
	if t, ok := doc["_type"].(string); !ok || t == "" {
		return false
	}
	m.Kind, m.Document = kind, doc
	return true
}

// maxFastDepth is the nesting beyond which decodeFast leaves a value to the
// general decoder (whose limit is far higher).
const maxFastDepth = 256

// fastParser reads JSON as RFC 8259 defines it, and decodes values as
// encoding/json decodes them into any.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// stringToken reads a string and returns its contents (without quotes)
// and whether it holds escapes. It checks the escapes' syntax.
func (p *fastParser) stringToken() (s []byte, escaped, ok bool) {
	if !p.byte('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], escaped, true
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				return nil, false, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return nil, false, false
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				p.i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			p.i++
		}
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// plainString reads a string without escapes that is valid UTF-8 (keys and
// ids; the general decoder handles the others).
func (p *fastParser) plainString() ([]byte, bool) {
	s, escaped, ok := p.stringToken()
	if !ok || escaped || !utf8.Valid(s) {
		return nil, false
	}
	return s, true
}

// str reads a string and decodes it as encoding/json does.
func (p *fastParser) str() (string, bool) {
	start := p.i
	s, escaped, ok := p.stringToken()
	if !ok {
		return "", false
	}
	if !escaped && utf8.Valid(s) {
		return string(s), true
	}
	// Escapes or invalid UTF-8 (replaced by U+FFFD): encoding/json's own
	// rules, on a token known to be well formed.
	var out string
	if err := json.Unmarshal(p.b[start:p.i], &out); err != nil {
		return "", false
	}
	return out, true
}

// number reads a number with RFC 8259's grammar and converts it as
// encoding/json does (out of range: not decoded).
func (p *fastParser) number() (float64, bool) {
	start := p.i
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		return 0, false
	}
	if p.byte('.') {
		if p.digits() == 0 {
			return 0, false
		}
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if p.digits() == 0 {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	return f, err == nil
}

func (p *fastParser) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// value reads any value, as encoding/json decodes it into any.
func (p *fastParser) value(depth int) (any, bool) {
	if p.i >= len(p.b) || depth > maxFastDepth {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		p.space()
		if p.byte('}') {
			return m, true
		}
		for {
			p.space()
			k, ok := p.str()
			if !ok {
				return nil, false
			}
			p.space()
			if !p.byte(':') {
				return nil, false
			}
			p.space()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v // a repeated name: the last wins, as in encoding/json
			p.space()
			if p.byte('}') {
				return m, true
			}
			if !p.byte(',') {
				return nil, false
			}
		}
	case c == '[':
		p.i++
		a := []any{}
		p.space()
		if p.byte(']') {
			return a, true
		}
		for {
			p.space()
			v, ok := p.value(depth + 1)
			if !ok {
				return nil, false
			}
			a = append(a, v)
			p.space()
			if p.byte(']') {
				return a, true
			}
			if !p.byte(',') {
				return nil, false
			}
		}
	case c == '"':
		return p.str()
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case p.literal("true"):
		return true, true
	case p.literal("false"):
		return false, true
	case p.literal("null"):
		return nil, true
	}
	return nil, false
}

// skipValue reads over any value, checking its syntax.
func (p *fastParser) skipValue(depth int) bool {
	if p.i >= len(p.b) || depth > maxFastDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.i++
		p.space()
		if p.byte(end) {
			return true
		}
		for {
			p.space()
			if c == '{' {
				if _, _, ok := p.stringToken(); !ok {
					return false
				}
				p.space()
				if !p.byte(':') {
					return false
				}
				p.space()
			}
			if !p.skipValue(depth + 1) {
				return false
			}
			p.space()
			if p.byte(end) {
				return true
			}
			if !p.byte(',') {
				return false
			}
		}
	case c == '"':
		_, _, ok := p.stringToken()
		return ok
	case c == '-' || ('0' <= c && c <= '9'):
		_, ok := p.number()
		return ok
	}
	return p.literal("true") || p.literal("false") || p.literal("null")
}
