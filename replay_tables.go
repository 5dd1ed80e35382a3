package vellum

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// tableWriter writes keys that come in ascending order (the events of a
// replay, under their sequence numbers, and their time-index entries) into
// sstables of about maxBytes each, which Replay hands to Pebble's Ingest at
// the end. Keys written this way skip the write-ahead log, the memtable and
// the flush and compactions that follow: each byte is written once, into
// the table that keeps it. The tables of one tableWriter never overlap.
//
// A full table is closed in the background while the next one is written:
// closing syncs the file, which for a table of tens of megabytes takes tens
// of milliseconds. finish waits for those closes, so that what a replay
// waits for at its end is only the last table's; the replay makes its last
// tables small (setMaxBytes) for that reason.
type tableWriter struct {
	dir      string // where the tables are created
	name     string // file name prefix
	maxBytes int
	opts     sstable.WriterOptions
	w        *sstable.Writer
	size     int
	last     []byte // last key written, to refuse a key out of order
	paths    []string

	closing  sync.WaitGroup // tables closing in the background
	closeMu  sync.Mutex
	closeErr error // the first error of a table closed in the background
}

// newTableWriter returns a tableWriter creating its tables in dir, in the
// table format and with the block settings of pdb's store.
func newTableWriter(pdb *pebble.DB, dir, name string, maxBytes int) *tableWriter {
	return &tableWriter{dir: dir, name: name, maxBytes: maxBytes, opts: sstable.WriterOptions{
		TableFormat: pdb.FormatMajorVersion().MaxTableFormat(),
		// As eventlog configures every level: point lookups consult a
		// bloom filter; events are large-ish values.
		FilterPolicy:   bloom.FilterPolicy(10),
		BlockSize:      32 << 10,
		IndexBlockSize: 256 << 10,
		Compression:    sstable.FastestCompression,
	}}
}

// accepts reports whether key sorts after every key written so far.
func (t *tableWriter) accepts(key []byte) bool {
	return t.last == nil || bytes.Compare(key, t.last) > 0
}

// set writes key and value, which must sort after every key written so far
// (see accepts).
func (t *tableWriter) set(key, value []byte) error {
	if !t.accepts(key) {
		return fmt.Errorf("replay: key %x out of order after %x", key, t.last)
	}
	if t.w == nil {
		if err := t.closeError(); err != nil {
			return err
		}
		path := filepath.Join(t.dir, fmt.Sprintf("%s-%04d.sst", t.name, len(t.paths)))
		f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("replay: creating %s: %w", path, err)
		}
		t.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), t.opts)
		t.paths = append(t.paths, path)
		t.size = 0
	}
	if err := t.w.Set(key, value); err != nil {
		return err
	}
	t.last = append(t.last[:0], key...)
	t.size += len(key) + len(value)
	if t.size >= t.maxBytes {
		t.closeTable()
	}
	return nil
}

// setMaxBytes changes the size of the tables from now on; a table already
// larger is closed at the next key.
func (t *tableWriter) setMaxBytes(n int) { t.maxBytes = n }

// closeTable starts closing the table being written, if any, in the
// background.
func (t *tableWriter) closeTable() {
	if t.w == nil {
		return
	}
	w := t.w
	t.w = nil
	t.closing.Add(1)
	go func() {
		defer t.closing.Done()
		if err := w.Close(); err != nil {
			t.closeMu.Lock()
			t.closeErr = cmp.Or(t.closeErr, err)
			t.closeMu.Unlock()
		}
	}()
}

// closeError returns the first error of a table closed in the background.
func (t *tableWriter) closeError() error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	return t.closeErr
}

// finish closes the last table, waits until every table is closed (and
// synced) and returns the paths of all of them.
func (t *tableWriter) finish() ([]string, error) {
	t.closeTable()
	t.closing.Wait()
	if err := t.closeError(); err != nil {
		return nil, err
	}
	return t.paths, nil
}

// abort closes the table being written, if any, after a failure, and waits
// for the tables closing (Replay removes the files with the rest of the
// copy).
func (t *tableWriter) abort() {
	t.closeTable()
	t.closing.Wait()
}
