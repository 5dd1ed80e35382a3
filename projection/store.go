package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// Perspective is a way of looking at a dataset's documents, as in Sanity.
type Perspective int

const (
	// Raw shows every document as stored: published ones, drafts
	// (drafts.<id>) and versions (versions.<release>.<id>) side by side.
	Raw Perspective = iota
	// Published hides drafts and versions: a drafts.<id> or
	// versions.<release>.<id> is not found.
	Published
	// Drafts shows drafts as if they were published: for an id x,
	// drafts.x (if present) takes the place of x. Every document is
	// returned with _id set to its published id and _originalId set to the
	// id it is stored under; drafts.<id> and versions are not found by
	// their own ids.
	Drafts
)

// String returns the perspective's name as Sanity spells it.
func (p Perspective) String() string {
	switch p {
	case Raw:
		return "raw"
	case Published:
		return "published"
	case Drafts:
		return "drafts"
	}
	return fmt.Sprintf("Perspective(%d)", int(p))
}

// ParsePerspective returns the perspective named s; "" means Raw. Sanity's
// older name "previewDrafts" is accepted for Drafts.
func ParsePerspective(s string) (Perspective, error) {
	switch s {
	case "", "raw":
		return Raw, nil
	case "published":
		return Published, nil
	case "drafts", "previewDrafts":
		return Drafts, nil
	}
	return 0, &Error{Code: CodeInvalidPerspective, Description: fmt.Sprintf("unknown perspective %q (want raw, published or drafts)", s)}
}

const (
	draftsPrefix   = "drafts."
	versionsPrefix = "versions."
)

func isDraft(id string) bool   { return strings.HasPrefix(id, draftsPrefix) }
func isVersion(id string) bool { return strings.HasPrefix(id, versionsPrefix) }

// Store is the projection of one dataset: its current documents and their
// history index, kept in the dataset's keyspaces of the shared Pebble store.
// Its methods may be called concurrently; Apply and Rebuild are meant for
// the dataset's single writer.
type Store struct {
	db      *eventlog.DB
	pdb     *pebble.DB
	log     *eventlog.Log
	dataset uint32

	docs    []byte // prefix of the current-documents keyspace
	history []byte // prefix of the history keyspace

	policy       SnapshotPolicy
	rebuildBatch int // bytes per Rebuild batch
	rebuildHold  int // bytes of current documents Rebuild holds in memory
}

// SnapshotPolicy decides when the history index keeps a full copy of a
// document that an event changed by a diff. A snapshot is kept when the
// diffs since the last full version (an effect with the whole document, or
// a snapshot) add up to at least the document's size, or when MaxRevisions
// diffs have been applied since. Reading any version then replays at most
// MaxRevisions-1 diffs, and snapshots cost at most about as much space as
// the diffs they cover (or one document per MaxRevisions revisions).
type SnapshotPolicy struct {
	MaxRevisions int
}

// DefaultSnapshotPolicy is the policy of stores made by Open.
var DefaultSnapshotPolicy = SnapshotPolicy{MaxRevisions: 128}

// Open returns the projection of dataset in db. If a rebuild of it was
// interrupted (its marker is still set), Open runs the rebuild again before
// returning, so a crash during Rebuild needs no operator action.
func Open(db *eventlog.DB, dataset uint32) (*Store, error) {
	s := &Store{
		db:      db,
		pdb:     db.Pebble(),
		log:     db.Log(dataset),
		dataset: dataset,
		docs:    eventlog.KeyPrefix(dataset, eventlog.SpaceDocs),
		history: eventlog.KeyPrefix(dataset, eventlog.SpaceHistory),
		policy:  DefaultSnapshotPolicy,

		rebuildBatch: defaultRebuildBatch,
		rebuildHold:  defaultRebuildHold,
	}
	interrupted, err := rebuildPending(s.pdb, dataset)
	if err != nil {
		return nil, err
	}
	if interrupted {
		if err := s.Rebuild(context.Background()); err != nil {
			return nil, fmt.Errorf("projection: resuming the interrupted rebuild of dataset %d: %w", dataset, err)
		}
	}
	return s, nil
}

// Dataset returns the number of the store's dataset.
func (s *Store) Dataset() uint32 { return s.dataset }

func (s *Store) docKey(id string) []byte {
	return append(bytes.Clone(s.docs), id...)
}

// historyPrefix returns the prefix of the history entries of document id:
// the id followed by a zero byte (ids never contain one).
func (s *Store) historyPrefix(id string) []byte {
	k := make([]byte, 0, len(s.history)+len(id)+1+8)
	k = append(k, s.history...)
	k = append(k, id...)
	return append(k, 0)
}

func (s *Store) historyKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(s.historyPrefix(id), seq)
}

// Current-document values: a small header, then the document's JSON bytes
// exactly as the effect held them (or as applying its diff produced them).
//
//	version        1 byte (1)
//	seq            uvarint: the event that wrote this version
//	revsSinceFull  uvarint: diffs applied since the last full version
//	bytesSinceFull uvarint: their total size in bytes
//	document       the rest
type docHeader struct {
	seq            uint64
	revsSinceFull  uint64
	bytesSinceFull uint64
}

const docValueVersion = 1

func appendDocValue(dst []byte, h docHeader, doc []byte) []byte {
	dst = append(dst, docValueVersion)
	dst = binary.AppendUvarint(dst, h.seq)
	dst = binary.AppendUvarint(dst, h.revsSinceFull)
	dst = binary.AppendUvarint(dst, h.bytesSinceFull)
	return append(dst, doc...)
}

func parseDocValue(v []byte) (docHeader, []byte, error) {
	var h docHeader
	if len(v) == 0 || v[0] != docValueVersion {
		return h, nil, fmt.Errorf("unknown document value version")
	}
	off := 1
	for _, f := range []*uint64{&h.seq, &h.revsSinceFull, &h.bytesSinceFull} {
		x, n := binary.Uvarint(v[off:])
		if n <= 0 {
			return h, nil, fmt.Errorf("truncated document header")
		}
		*f = x
		off += n
	}
	return h, v[off:], nil
}

// getCurrent returns a copy of the stored value of document id.
func (s *Store) getCurrent(id string) (docHeader, []byte, bool, error) {
	v, closer, err := s.pdb.Get(s.docKey(id))
	if err == pebble.ErrNotFound {
		return docHeader{}, nil, false, nil
	}
	if err != nil {
		return docHeader{}, nil, false, err
	}
	defer closer.Close()
	h, doc, err := parseDocValue(v)
	if err != nil {
		return h, nil, false, s.corrupt(id, h.seq, "current document: %v", err)
	}
	return h, bytes.Clone(doc), true, nil
}

// Get returns the current document id as seen from perspective p: its JSON
// bytes (a copy the caller owns) and whether it was found.
func (s *Store) Get(id string, p Perspective) ([]byte, bool, error) {
	switch p {
	case Raw:
	case Published:
		if isDraft(id) || isVersion(id) {
			return nil, false, nil
		}
	case Drafts:
		if isDraft(id) || isVersion(id) {
			return nil, false, nil
		}
		_, doc, ok, err := s.getCurrent(draftsPrefix + id)
		if err != nil {
			return nil, false, err
		}
		if ok {
			doc, err = overlay(doc, id, draftsPrefix+id)
			return doc, err == nil, err
		}
		_, doc, ok, err = s.getCurrent(id)
		if err != nil || !ok {
			return nil, false, err
		}
		doc, err = overlay(doc, id, id)
		return doc, err == nil, err
	default:
		return nil, false, &Error{Code: CodeInvalidPerspective, Dataset: s.dataset, DocID: id,
			Description: fmt.Sprintf("unknown perspective %d", int(p))}
	}
	_, doc, ok, err := s.getCurrent(id)
	return doc, ok, err
}

// overlay returns doc with _id set to id and _originalId to original, as
// Sanity presents documents in the drafts perspective. Members keep
// encoding/json's sorted order.
func overlay(doc []byte, id, original string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, &Error{Code: CodeCorruptProjection, DocID: original,
			Description: fmt.Sprintf("stored document is not a JSON object: %v", err)}
	}
	idJSON, _ := json.Marshal(id)
	origJSON, _ := json.Marshal(original)
	m["_id"] = idJSON
	m["_originalId"] = origJSON
	return json.Marshal(m)
}

// Scan calls fn with the id and JSON of every current document visible in
// perspective p, in the order of id, until fn returns an error (which Scan
// returns). In the Drafts perspective, id is the published id (the
// document's _id) and a draft takes the place of its published document.
// doc is only valid during the call; fn must copy what it keeps.
func (s *Store) Scan(p Perspective, fn func(id string, doc []byte) error) error {
	if p != Raw && p != Published && p != Drafts {
		return &Error{Code: CodeInvalidPerspective, Dataset: s.dataset, Description: fmt.Sprintf("unknown perspective %d", int(p))}
	}
	all, err := s.newDocIter(s.docs, eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs), p != Raw)
	if err != nil {
		return err
	}
	defer all.close()
	if p != Drafts {
		for ; all.valid(); all.next() {
			if err := all.emit(fn, ""); err != nil {
				return err
			}
		}
		return all.err()
	}
	// Drafts: merge the published ids with the drafts (drafts.<id>, which
	// sort by <id> too), the draft winning a tie.
	drafts, err := s.newDocIter(s.docKey(draftsPrefix), s.docKey("drafts/"), false)
	if err != nil {
		return err
	}
	defer drafts.close()
	for all.valid() || drafts.valid() {
		var err error
		switch {
		case !drafts.valid() || (all.valid() && all.id() < drafts.id()[len(draftsPrefix):]):
			err = all.emit(fn, all.id())
			all.next()
		default:
			published := drafts.id()[len(draftsPrefix):]
			if all.valid() && all.id() == published {
				all.next()
			}
			err = drafts.emit(fn, published)
			drafts.next()
		}
		if err != nil {
			return err
		}
	}
	if err := all.err(); err != nil {
		return err
	}
	return drafts.err()
}

// docIter iterates over current documents, optionally skipping drafts and
// versions.
type docIter struct {
	s          *Store
	it         *pebble.Iterator
	ok         bool
	onlyPublic bool
	skipDraft  []byte
	skipVer    []byte
}

func (s *Store) newDocIter(lower, upper []byte, onlyPublished bool) (*docIter, error) {
	it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	d := &docIter{s: s, it: it, onlyPublic: onlyPublished,
		skipDraft: s.docKey("drafts/"), skipVer: s.docKey("versions/")}
	d.ok = it.First()
	d.skip()
	return d, nil
}

func (d *docIter) skip() {
	for d.ok && d.onlyPublic {
		switch id := d.id(); {
		case isDraft(id):
			d.ok = d.it.SeekGE(d.skipDraft)
		case isVersion(id):
			d.ok = d.it.SeekGE(d.skipVer)
		default:
			return
		}
	}
}

func (d *docIter) valid() bool { return d.ok }
func (d *docIter) next()       { d.ok = d.it.Next(); d.skip() }
func (d *docIter) id() string  { return string(d.it.Key()[len(d.s.docs):]) }
func (d *docIter) err() error  { return d.it.Error() }
func (d *docIter) close()      { d.it.Close() }

// emit calls fn with the current document; if as is not "", the document is
// presented in the drafts perspective under id as.
func (d *docIter) emit(fn func(id string, doc []byte) error, as string) error {
	id := d.id()
	v, err := d.it.ValueAndErr()
	if err != nil {
		return err
	}
	h, doc, err := parseDocValue(v)
	if err != nil {
		return d.s.corrupt(id, h.seq, "current document: %v", err)
	}
	if as == "" {
		return fn(id, doc)
	}
	if doc, err = overlay(doc, as, id); err != nil {
		return err
	}
	return fn(as, doc)
}
