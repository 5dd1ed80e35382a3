package authz

import (
	"fmt"
	"strings"
)

// A Path is a compiled path glob of a grant, with the meaning of GROQ's
// path() (Sanity's path expressions): the glob is split at its dots; a part
// "*" matches one id segment (one or more characters, none of them a dot),
// a part "**" matches any run of characters, dots included; any other part
// matches itself. So "*" matches exactly the ids on the root path (no dot),
// "drafts.**" every draft, and "**" every id.
//
// Wildcards are whole parts: "post-*" is rejected by ParsePath rather than
// silently matching only the literal id "post-*" (which no valid id is).
type Path struct {
	glob string
	kind pathKind
	lit  string    // pathLiteral: the id; pathPrefix: the prefix before "**"
	toks []pathTok // pathGeneral
}

type pathKind uint8

const (
	pathLiteral pathKind = iota // no wildcard
	pathAll                     // "**"
	pathRoot                    // "*"
	pathPrefix                  // "lit.**"
	pathGeneral
)

type pathTok struct {
	kind pathKind // pathLiteral, pathRoot (one segment) or pathAll (anything)
	lit  string
}

// maxPathLength bounds a glob; ids are at most 128 characters.
const maxPathLength = 256

// ParsePath compiles a path glob. It returns an *Error with code
// invalidGroup when the glob is empty, too long, has an empty part, a
// wildcard that is not a whole part, or a character an id cannot contain.
func ParsePath(glob string) (Path, error) {
	bad := func(format string, args ...any) (Path, error) {
		return Path{}, invalidGroup("", -1, "path %q is not a valid path glob: %s", glob, fmt.Sprintf(format, args...))
	}
	if glob == "" {
		return bad("it is empty")
	}
	if len(glob) > maxPathLength {
		return bad("it is longer than %d characters", maxPathLength)
	}
	parts := strings.Split(glob, ".")
	var toks []pathTok
	lit := func(s string) {
		if n := len(toks); n > 0 && toks[n-1].kind == pathLiteral {
			toks[n-1].lit += s
			return
		}
		toks = append(toks, pathTok{kind: pathLiteral, lit: s})
	}
	for i, part := range parts {
		if i > 0 {
			lit(".")
		}
		switch part {
		case "":
			return bad("part %d is empty", i+1)
		case "*":
			toks = append(toks, pathTok{kind: pathRoot})
		case "**":
			toks = append(toks, pathTok{kind: pathAll})
		default:
			for j := 0; j < len(part); j++ {
				c := part[j]
				switch {
				case c == '*':
					return bad("the wildcard in part %q must be a whole part (* or **)", part)
				case !isIDChar(c):
					return bad("part %q contains %q; ids consist of a-z, A-Z, 0-9, _ and -", part, rune(c))
				}
			}
			lit(part)
		}
	}
	p := Path{glob: glob, kind: pathGeneral, toks: toks}
	switch {
	case len(toks) == 1 && toks[0].kind == pathLiteral:
		p.kind, p.lit, p.toks = pathLiteral, toks[0].lit, nil
	case len(toks) == 1:
		p.kind, p.toks = toks[0].kind, nil
	case len(toks) == 2 && toks[0].kind == pathLiteral && toks[1].kind == pathAll:
		p.kind, p.lit, p.toks = pathPrefix, toks[0].lit, nil
	}
	return p, nil
}

// MustParsePath is ParsePath for globs known to be valid; it panics
// otherwise. It is meant for the built-in grants and tests.
func MustParsePath(glob string) Path {
	p, err := ParsePath(glob)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the glob.
func (p Path) String() string { return p.glob }

// Match reports whether id matches the glob. The empty id matches nothing.
func (p Path) Match(id string) bool {
	if id == "" || p.glob == "" {
		return false
	}
	switch p.kind {
	case pathLiteral:
		return id == p.lit
	case pathAll:
		return true
	case pathRoot:
		return strings.IndexByte(id, '.') < 0
	case pathPrefix:
		return strings.HasPrefix(id, p.lit)
	}
	return matchToks(p.toks, id)
}

// matchToks runs the glob as a nondeterministic automaton over id: reach[i]
// says whether the tokens consumed so far can end at offset i.
func matchToks(toks []pathTok, id string) bool {
	var buf [2][130]bool
	var reach, next []bool
	if len(id)+1 <= len(buf[0]) {
		reach, next = buf[0][:len(id)+1], buf[1][:len(id)+1]
	} else {
		reach, next = make([]bool, len(id)+1), make([]bool, len(id)+1)
	}
	reach[0] = true
	for _, t := range toks {
		clear(next)
		live := false
		switch t.kind {
		case pathLiteral:
			for i, ok := range reach {
				if ok && strings.HasPrefix(id[i:], t.lit) {
					next[i+len(t.lit)] = true
					live = true
				}
			}
		case pathRoot: // one or more characters, no dot
			for i, ok := range reach {
				if !ok {
					continue
				}
				for j := i; j < len(id) && id[j] != '.'; j++ {
					next[j+1] = true
					live = true
				}
			}
		case pathAll: // anything from the first reachable offset on
			for i, ok := range reach {
				if ok {
					for j := i; j < len(next); j++ {
						next[j] = true
					}
					live = true
					break
				}
			}
		}
		if !live {
			return false
		}
		reach, next = next, reach
	}
	return reach[len(id)]
}

// MatchPath reports whether id matches glob; an invalid glob matches
// nothing.
func MatchPath(glob, id string) bool {
	p, err := ParsePath(glob)
	return err == nil && p.Match(id)
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// isName reports whether s is a valid identity id, member id, group name or
// token name: one or more of a-zA-Z0-9_-, at most 128 characters.
func isName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIDChar(s[i]) {
			return false
		}
	}
	return true
}
