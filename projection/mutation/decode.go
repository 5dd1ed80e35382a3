package mutation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A Transaction is a list of mutations applied atomically, as submitted to
// Sanity's mutation API: {"mutations": [...], "transactionId"?, "dryRun"?,
// "returnIds"?, "returnDocuments"?}.
type Transaction struct {
	Mutations       []Mutation
	TransactionID   string
	DryRun          bool
	ReturnIDs       bool
	ReturnDocuments bool
}

// Mutation kinds.
const (
	KindCreate            = "create"
	KindCreateOrReplace   = "createOrReplace"
	KindCreateIfNotExists = "createIfNotExists"
	KindDelete            = "delete"
	KindPatch             = "patch"
)

// A Mutation is one entry of a transaction.
type Mutation struct {
	Raw      json.RawMessage // the mutation as submitted, for the event log
	Kind     string          // one of the Kind constants
	Document map[string]any  // create, createOrReplace, createIfNotExists
	ID       string          // delete and patch by id
	Query    string          // delete and patch by GROQ query (instead of ID)
	Params   map[string]any  // parameters of Query
	Patch    *Patch          // patch
}

// A Patch holds the operations of a patch mutation. Within one patch they
// are applied in this order: set, setIfMissing, unset, inc, dec, insert,
// diffMatchPatch; the entries of each in the order the JSON gives them.
type Patch struct {
	IfRevisionID   string
	Set            []Op
	SetIfMissing   []Op
	Unset          []Path
	Inc            []Op // Value is a float64
	Dec            []Op // Value is a float64
	Insert         *Insert
	DiffMatchPatch []Op // Value is the patch text (a string)
}

// An Op is one path → value entry of a patch operation.
type Op struct {
	Path  Path
	Value any
}

// Insert positions.
const (
	InsertBefore  = "before"
	InsertAfter   = "after"
	InsertReplace = "replace"
)

// An Insert inserts Items before or after the elements Path selects, or
// replaces them with Items.
type Insert struct {
	Position string // InsertBefore, InsertAfter or InsertReplace
	Path     Path
	Items    []any
}

// MaxMutations bounds the number of mutations in one transaction.
const MaxMutations = 10000

// DecodeTransaction decodes a transaction strictly: unknown fields, unknown
// mutation kinds, wrong types and trailing data are errors. Numbers in
// documents become float64. The error is an *Error whose Index names the
// mutation at fault (-1 for the transaction as a whole).
func DecodeTransaction(data []byte) (*Transaction, error) {
	if tx, ok := decodeFast(data); ok {
		return tx, nil
	}
	return decodeTransaction(data)
}

// decodeTransaction is the general decoder: it decodes every valid
// transaction and words every error.
func decodeTransaction(data []byte) (*Transaction, error) {
	// One pass over the transaction: its members are read in order and
	// each mutation is cut out once.
	dec := json.NewDecoder(bytes.NewReader(data))
	notObject := func(err error) error {
		return malformed(-1, "the transaction is not a JSON object: %s", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, notObject(describeJSONError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, notObject(fmt.Errorf("found %s", tokenName(tok)))
	}
	tx := &Transaction{}
	seen := map[string]bool{}
	var haveMutations bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject(describeJSONError(err))
		}
		key := tok.(string) // the decoder only yields strings in key position
		if seen[key] {
			return nil, notObject(fmt.Errorf("duplicate member %q", key))
		}
		seen[key] = true
		if key == "mutations" {
			haveMutations = true
			if err := decodeMutations(dec, tx); err != nil {
				return nil, err
			}
			continue
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, notObject(describeJSONError(err))
		}
		switch key {
		case "transactionId":
			if err := json.Unmarshal(value, &tx.TransactionID); err != nil {
				return nil, malformed(-1, "transactionId must be a string")
			}
			if tx.TransactionID == "" {
				return nil, malformed(-1, "transactionId must not be empty")
			}
		case "dryRun", "returnIds", "returnDocuments":
			var b bool
			if err := json.Unmarshal(value, &b); err != nil {
				return nil, malformed(-1, "%s must be true or false", key)
			}
			switch key {
			case "dryRun":
				tx.DryRun = b
			case "returnIds":
				tx.ReturnIDs = b
			default:
				tx.ReturnDocuments = b
			}
		default:
			return nil, malformed(-1, "unknown field %q in the transaction (expected mutations, transactionId, dryRun, returnIds, returnDocuments)", key)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, notObject(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notObject(errors.New("unexpected data after the object"))
	}
	if !haveMutations {
		return nil, malformed(-1, "the transaction has no mutations field")
	}
	if len(tx.Mutations) == 0 {
		return nil, malformed(-1, "mutations is empty")
	}
	return tx, nil
}

// decodeMutations reads the mutations array from dec.
func decodeMutations(dec *json.Decoder, tx *Transaction) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed(-1, "the transaction is not a JSON object: %s", describeJSONError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return malformed(-1, "mutations must be an array")
	}
	for i := 0; dec.More(); i++ {
		if i == MaxMutations {
			return malformed(-1, "the transaction has more than the maximum of %d mutations", MaxMutations)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return malformed(-1, "the transaction is not a JSON object: %s", describeJSONError(err))
		}
		tx.Mutations = append(tx.Mutations, Mutation{Raw: raw})
		if err := decodeMutation(i, raw, &tx.Mutations[i]); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return malformed(-1, "the transaction is not a JSON object: %s", describeJSONError(err))
	}
	return nil
}

func malformed(index int, format string, args ...any) *Error {
	return errorf(CodeMalformedTransaction, index, "", format, args...)
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members in order, rejecting
// duplicate names and anything after the object.
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, describeJSONError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("found %s", tokenName(tok))
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, describeJSONError(err)
		}
		key := tok.(string) // the decoder only yields strings in key position
		if seen[key] {
			return nil, fmt.Errorf("duplicate member %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, describeJSONError(err)
		}
		out = append(out, member{key, v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the object")
	}
	return out, nil
}

func describeJSONError(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON input")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err
}

func tokenName(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return string(t)
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func decodeMutation(i int, raw json.RawMessage, m *Mutation) error {
	members, err := objectMembers(raw)
	if err != nil {
		return malformed(i, "a mutation must be a JSON object with one member naming its kind: %s", err)
	}
	if len(members) != 1 {
		return malformed(i, "a mutation must have exactly one member naming its kind, found %d", len(members))
	}
	kind, body := members[0].key, members[0].value
	m.Kind = kind
	switch kind {
	case KindCreate, KindCreateOrReplace, KindCreateIfNotExists:
		// body is known to be valid JSON: decode it without validating
		// it again.
		var doc map[string]any
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&doc); err != nil || doc == nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && strings.HasPrefix(te.Value, "number") {
				return malformed(i, "the document of %s has a number that is out of range (at byte %d of the mutation)", kind, te.Offset)
			}
			return malformed(i, "the body of %s must be a document (a JSON object)", kind)
		}
		if id, ok := doc["_id"]; ok {
			if _, isString := id.(string); !isString {
				return malformed(i, "the _id of the document must be a string, found %s", kindName(id))
			}
		} else if kind != KindCreate {
			return malformed(i, "%s needs a document with an _id", kind)
		}
		t, ok := doc["_type"]
		if !ok {
			return malformed(i, "the document has no _type (every document needs one)")
		}
		if s, isString := t.(string); !isString {
			return malformed(i, "the _type of the document must be a string, found %s", kindName(t))
		} else if s == "" {
			return malformed(i, "the _type of the document is empty")
		}
		m.Document = doc
		return nil
	case KindDelete:
		fields, err := objectMembers(body)
		if err != nil {
			return malformed(i, "the body of delete must be an object with id or query: %s", err)
		}
		for _, f := range fields {
			switch f.key {
			case "id", "query", "params":
			default:
				return malformed(i, "unknown field %q in delete (expected id, or query and params)", f.key)
			}
			if err := selection(i, kind, f, m); err != nil {
				return err
			}
		}
		return checkSelection(i, kind, m)
	case KindPatch:
		fields, err := objectMembers(body)
		if err != nil {
			return malformed(i, "the body of patch must be an object: %s", err)
		}
		m.Patch = &Patch{}
		for _, f := range fields {
			if err := patchField(i, f, m); err != nil {
				return err
			}
		}
		return checkSelection(i, kind, m)
	}
	return errorf(CodeUnknownMutation, i, "", "unknown mutation kind %q (expected create, createOrReplace, createIfNotExists, delete or patch)", kind)
}

func selection(i int, kind string, f member, m *Mutation) error {
	switch f.key {
	case "id":
		if err := json.Unmarshal(f.value, &m.ID); err != nil {
			return malformed(i, "the id of %s must be a string", kind)
		}
		if m.ID == "" {
			return errorf(CodeInvalidDocumentID, i, "", "the id of %s is empty", kind)
		}
	case "query":
		if err := json.Unmarshal(f.value, &m.Query); err != nil || m.Query == "" {
			return malformed(i, "the query of %s must be a non-empty string", kind)
		}
	case "params":
		if err := json.Unmarshal(f.value, &m.Params); err != nil || m.Params == nil {
			return malformed(i, "the params of %s must be an object", kind)
		}
	}
	return nil
}

func checkSelection(i int, kind string, m *Mutation) error {
	switch {
	case m.ID == "" && m.Query == "":
		return malformed(i, "%s needs an id or a query", kind)
	case m.ID != "" && m.Query != "":
		return malformed(i, "%s has both an id and a query; give one", kind)
	case m.Params != nil && m.Query == "":
		return malformed(i, "%s has params but no query", kind)
	}
	return nil
}

func patchField(i int, f member, m *Mutation) error {
	p := m.Patch
	switch f.key {
	case "id", "query", "params":
		return selection(i, KindPatch, f, m)
	case "ifRevisionID":
		if err := json.Unmarshal(f.value, &p.IfRevisionID); err != nil || p.IfRevisionID == "" {
			return malformed(i, "ifRevisionID must be a non-empty string")
		}
		return nil
	case "set", "setIfMissing", "inc", "dec", "diffMatchPatch":
		ops, err := pathMap(i, f)
		if err != nil {
			return err
		}
		switch f.key {
		case "set":
			p.Set = ops
		case "setIfMissing":
			p.SetIfMissing = ops
		case "inc", "dec":
			for _, op := range ops {
				if _, ok := op.Value.(float64); !ok {
					return malformed(i, "%s needs a number for path %q, found %s", f.key, op.Path, kindName(op.Value))
				}
			}
			if f.key == "inc" {
				p.Inc = ops
			} else {
				p.Dec = ops
			}
		default:
			for _, op := range ops {
				if _, ok := op.Value.(string); !ok {
					return malformed(i, "diffMatchPatch needs patch text (a string) for path %q, found %s", op.Path, kindName(op.Value))
				}
			}
			p.DiffMatchPatch = ops
		}
		return nil
	case "unset":
		var paths []string
		if err := json.Unmarshal(f.value, &paths); err != nil || paths == nil {
			return malformed(i, "unset must be an array of paths (strings)")
		}
		for _, s := range paths {
			path, err := parsePathAt(i, s)
			if err != nil {
				return err
			}
			p.Unset = append(p.Unset, path)
		}
		return nil
	case "insert":
		return decodeInsert(i, f.value, p)
	}
	return malformed(i, "unknown field %q in patch (expected id or query, ifRevisionID, set, setIfMissing, unset, inc, dec, insert, diffMatchPatch)", f.key)
}

func parsePathAt(i int, s string) (Path, error) {
	path, err := ParsePath(s)
	if err != nil {
		e := err.(*Error)
		e.Index = i
		return Path{}, e
	}
	return path, nil
}

// pathMap decodes {path: value, ...} keeping the order of the paths.
func pathMap(i int, f member) ([]Op, error) {
	members, err := objectMembers(f.value)
	if err != nil {
		return nil, malformed(i, "%s must be an object of path → value: %s", f.key, err)
	}
	ops := make([]Op, 0, len(members))
	for _, m := range members {
		path, err := parsePathAt(i, m.key)
		if err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal(m.value, &v); err != nil {
			return nil, malformed(i, "the value of %s at %q: %s", f.key, m.key, err)
		}
		ops = append(ops, Op{Path: path, Value: v})
	}
	return ops, nil
}

func decodeInsert(i int, raw json.RawMessage, p *Patch) error {
	members, err := objectMembers(raw)
	if err != nil {
		return malformed(i, "insert must be an object with before, after or replace and items: %s", err)
	}
	ins := &Insert{}
	var haveItems bool
	var positions []string
	for _, m := range members {
		switch m.key {
		case InsertBefore, InsertAfter, InsertReplace:
			positions = append(positions, m.key)
			var s string
			if err := json.Unmarshal(m.value, &s); err != nil {
				return malformed(i, "insert %s must be a path (a string)", m.key)
			}
			path, err := parsePathAt(i, s)
			if err != nil {
				return err
			}
			ins.Position, ins.Path = m.key, path
		case "items":
			if err := json.Unmarshal(m.value, &ins.Items); err != nil || ins.Items == nil {
				return malformed(i, "insert items must be an array")
			}
			haveItems = true
		default:
			return malformed(i, "unknown field %q in insert (expected before, after or replace, and items)", m.key)
		}
	}
	if len(positions) != 1 {
		return malformed(i, "insert needs exactly one of before, after or replace, found %s", orNone(positions))
	}
	if !haveItems {
		return malformed(i, "insert needs items")
	}
	p.Insert = ins
	return nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, " and ")
}
