package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/vellum-db/vellum/eventlog"
	"github.com/vellum-db/vellum/projection/jsondiff"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// world is a dataset driven the way the engine drives it: each commit is
// one event, appended and applied in one batch.
type world struct {
	t     testing.TB
	db    *eventlog.DB
	log   *eventlog.Log
	store *Store
	seq   uint64
	hash  [32]byte
	now   time.Time
	docs  map[string]map[string]any // current documents, as the engine knows them
}

func newWorld(t testing.TB, dataset uint32) *world {
	t.Helper()
	db, err := eventlog.Open("db", &eventlog.Options{FS: vfs.NewMem(), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return attachWorld(t, db, dataset)
}

func attachWorld(t testing.TB, db *eventlog.DB, dataset uint32) *world {
	t.Helper()
	s, err := Open(db, dataset)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, db: db, log: db.Log(dataset), store: s, now: t0, docs: map[string]map[string]any{}}
	if w.seq, w.hash, err = w.log.Head(); err != nil {
		t.Fatal(err)
	}
	return w
}

// change is one document write of a commit.
type change struct {
	id   string
	doc  map[string]any // nil: delete
	diff bool           // record the effect as a diff against the current version
}

func txid(seq uint64) string { return fmt.Sprintf("tx-%d", seq) }

// commit logs and applies one event with the given changes, one second
// after the previous, and returns its sequence number.
func (w *world) commit(changes ...change) uint64 {
	w.t.Helper()
	seq := w.seq + 1
	ev := &eventlog.Event{Seq: seq, TxID: txid(seq), Time: w.now, Identity: "tester", PrevHash: w.hash,
		Mutations: json.RawMessage(`[]`)}
	w.now = w.now.Add(time.Second)
	for _, c := range changes {
		before := w.docs[c.id]
		ef := eventlog.Effect{DocID: c.id, Grant: eventlog.GrantRef{Group: "_.groups.administrator"}}
		if before != nil {
			ef.PrevRev, _ = before["_rev"].(string)
		}
		switch {
		case c.doc == nil:
			ef.Operation = eventlog.OpDelete
			delete(w.docs, c.id)
		default:
			doc := map[string]any{}
			for k, v := range c.doc {
				doc[k] = v
			}
			doc["_id"], doc["_rev"] = c.id, ev.TxID
			ef.Operation, ef.NewRev = eventlog.OpUpdate, ev.TxID
			if before == nil {
				ef.Operation = eventlog.OpCreate
			}
			if c.diff && before != nil {
				d, err := json.Marshal(jsondiff.Diff(before, doc))
				if err != nil {
					w.t.Fatal(err)
				}
				ef.Diff = d
			} else {
				ef.Doc, _ = json.Marshal(doc)
			}
			w.docs[c.id] = doc
		}
		ev.Effects = append(ev.Effects, ef)
	}
	b := w.db.Pebble().NewBatch()
	defer b.Close()
	if err := w.log.Append(b, ev); err != nil {
		w.t.Fatal(err)
	}
	if err := w.store.Apply(b, ev); err != nil {
		w.t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		w.t.Fatal(err)
	}
	w.seq, w.hash = seq, ev.Hash
	return seq
}

// TestDataDriven runs testdata/*.txt. Commands:
//
//	commit            input: one change a line, "create|update|patch ID JSON" or "delete ID"
//	                  (patch logs a diff, create and update the whole document); prints the seq
//	get id=ID [perspective=P]
//	scan [perspective=P]
//	at id=ID seq=N | rev=TXID | time=SECONDS  (seconds after the first event)
//	history id=ID     lists the document's history entries
//	rebuild           rebuilds and checks the projection is byte-identical
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		w := newWorld(t, 1)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			perspective := func() Perspective {
				var name string
				if td.HasArg("perspective") {
					td.ScanArgs(t, "perspective", &name)
				}
				p, err := ParsePerspective(name)
				if err != nil {
					td.Fatalf(t, "%v", err)
				}
				return p
			}
			show := func(doc []byte, ok bool, err error) string {
				switch {
				case err != nil:
					return "error: " + err.Error() + "\n"
				case !ok:
					return "not found\n"
				}
				return string(doc) + "\n"
			}
			switch td.Cmd {
			case "commit":
				var cs []change
				for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
					op, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
					id, js, _ := strings.Cut(rest, " ")
					c := change{id: id}
					if op != "delete" {
						if err := json.Unmarshal([]byte(js), &c.doc); err != nil {
							td.Fatalf(t, "%s: %v", line, err)
						}
						c.diff = op == "patch"
					}
					cs = append(cs, c)
				}
				return fmt.Sprintf("seq %d\n", w.commit(cs...))
			case "get":
				var id string
				td.ScanArgs(t, "id", &id)
				return show(w.store.Get(id, perspective()))
			case "scan":
				var out strings.Builder
				err := w.store.Scan(perspective(), func(id string, doc []byte) error {
					fmt.Fprintf(&out, "%s: %s\n", id, doc)
					return nil
				})
				if err != nil {
					fmt.Fprintf(&out, "error: %v\n", err)
				}
				return out.String()
			case "at":
				var id string
				td.ScanArgs(t, "id", &id)
				switch {
				case td.HasArg("seq"):
					var seq uint64
					td.ScanArgs(t, "seq", &seq)
					return show(w.store.AtSeq(id, seq))
				case td.HasArg("rev"):
					var rev string
					td.ScanArgs(t, "rev", &rev)
					return show(w.store.AtRev(id, rev))
				case td.HasArg("time"):
					var secs string
					td.ScanArgs(t, "time", &secs)
					f, err := strconv.ParseFloat(secs, 64)
					if err != nil {
						td.Fatalf(t, "%v", err)
					}
					return show(w.store.AtTime(id, t0.Add(time.Duration(f*float64(time.Second)))))
				}
				td.Fatalf(t, "at needs seq, rev or time")
			case "history":
				var id string
				td.ScanArgs(t, "id", &id)
				var out strings.Builder
				lower := w.store.historyPrefix(id)
				it, err := w.db.Pebble().NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: append(lower[:len(lower)-1:len(lower)-1], 1)})
				if err != nil {
					t.Fatal(err)
				}
				for ok := it.First(); ok; ok = it.Next() {
					e, err := w.store.parseHistory(id, it.Key(), it.Value())
					if err != nil {
						fmt.Fprintf(&out, "error: %v\n", err)
						continue
					}
					kind := map[byte]string{histDoc: "document", histPatch: "diff", histSnapshot: "diff+snapshot", histDeleted: "deleted"}[e.kind]
					fmt.Fprintf(&out, "seq %d: %s (effect %d)\n", e.seq, kind, e.effect)
				}
				it.Close()
				return out.String()
			case "rebuild":
				before := dumpProjection(t, w.db, 1)
				if err := w.store.Rebuild(context.Background()); err != nil {
					return "error: " + err.Error() + "\n"
				}
				if diff := compareDumps(before, dumpProjection(t, w.db, 1)); diff != "" {
					return "rebuilt projection differs:\n" + diff
				}
				return fmt.Sprintf("identical (%d keys)\n", len(before))
			}
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		})
	})
}

// kv is one key and value of a dump.
type kv struct{ k, v string }

// dumpProjection returns every key and value of the projection keyspaces
// (current documents and history) of dataset, in order.
func dumpProjection(t testing.TB, db *eventlog.DB, dataset uint32) []kv {
	t.Helper()
	var out []kv
	for _, space := range []byte{eventlog.SpaceDocs, eventlog.SpaceHistory} {
		it, err := db.Pebble().NewIter(&pebble.IterOptions{
			LowerBound: eventlog.KeyPrefix(dataset, space),
			UpperBound: eventlog.KeyUpperBound(dataset, space),
		})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			out = append(out, kv{string(it.Key()), string(it.Value())})
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compareDumps describes the first differences between two dumps, or
// returns "".
func compareDumps(a, b []kv) string {
	var out strings.Builder
	i, j, n := 0, 0, 0
	for (i < len(a) || j < len(b)) && n < 5 {
		switch {
		case j >= len(b) || (i < len(a) && a[i].k < b[j].k):
			fmt.Fprintf(&out, "only before: %q\n", a[i].k)
			i++
		case i >= len(a) || b[j].k < a[i].k:
			fmt.Fprintf(&out, "only after: %q\n", b[j].k)
			j++
		default:
			if a[i].v != b[j].v {
				fmt.Fprintf(&out, "value of %q: %q, rebuilt %q\n", a[i].k, a[i].v, b[j].v)
			} else {
				n--
			}
			i++
			j++
		}
		n++
	}
	return out.String()
}
