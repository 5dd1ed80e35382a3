package eventlog

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// FormatMajorVersion is the Pebble on-disk format Vellum creates and
// upgrades stores to. It is named, not FormatNewest, so that a Pebble
// upgrade never silently ratchets the store to a format older binaries
// cannot open.
const FormatMajorVersion = pebble.FormatValueSeparation

// Keyspaces. Every key in the store starts with a 4-byte big-endian dataset
// number followed by one of these tags (see docs/storage.md for the full
// layout). The tags of the projection are defined here too so that the whole
// layout lives in one place.
const (
	SpaceEvents  byte = 'e' // seq (8 BE) → encoded event
	SpaceTx      byte = 'x' // transaction id → seq (8 BE); permanent
	SpaceTime    byte = 't' // unix ns (8 BE) ‖ seq (8 BE) → empty
	SpaceDocs    byte = 'd' // projection: document id → current document
	SpaceHistory byte = 'h' // projection: document id ‖ 0x00 ‖ seq (8 BE) → history entry
	SpaceMeta    byte = 'm' // small per-dataset markers (e.g. rebuild in progress)
)

// KeyPrefix returns the prefix of keyspace space of dataset: the dataset
// number (4 bytes, big endian) and the tag.
func KeyPrefix(dataset uint32, space byte) []byte {
	p := make([]byte, 5, 5+24)
	binary.BigEndian.PutUint32(p, dataset)
	p[4] = space
	return p
}

// KeyUpperBound returns the smallest key above every key of keyspace space
// of dataset.
func KeyUpperBound(dataset uint32, space byte) []byte {
	return KeyPrefix(dataset, space+1)
}

// Options configure the Pebble store. The zero value (or nil) gives the
// defaults documented on each field; every Pebble option Vellum depends on is
// set explicitly in Open, not left to Pebble's defaults.
type Options struct {
	// CacheSize is the block cache in bytes; 0 means 128 MiB. Reads of
	// current documents and of recent events are served from it.
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes; 0 means 8 MiB.
	// Open after an unclean stop replays the write-ahead log written since
	// the last flush and flushes it before returning: at most about
	// MemTableSize × 4 (the memtables that may wait for a flush), so this
	// bounds the restart time. Larger memtables make bulk writes (rebuilds)
	// cheaper.
	MemTableSize uint64
	// L0CompactionThreshold is the L0 read amplification at which a
	// compaction starts; 0 means 16. A dataset's writes go to five
	// keyspaces at once, so every L0 table overlaps much of the level below
	// it, which each compaction of L0 rewrites: compacting after 16 flushes
	// rather than 4 rewrites it a quarter as often (a fifth less CPU per
	// transaction under 64 writers). The cost is up to 16 more bloom
	// filter checks for a point lookup that misses.
	L0CompactionThreshold int
	// L0StopWritesThreshold is the L0 read amplification at which writes
	// stall; 0 means 48 (three times the compaction threshold; rebuilds
	// write fast, so stall late).
	L0StopWritesThreshold int
	// FS is the filesystem; nil means the operating system's. Tests use
	// vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// Logger receives Pebble's errors; nil means slog.Default(). Pebble's
	// informational messages are dropped.
	Logger *slog.Logger
}

// DB is one Pebble database holding the event logs and projections of all
// datasets of a daemon.
type DB struct {
	pdb *pebble.DB
}

// Open opens (creating if needed) the store in dir. A store that was not
// closed cleanly needs nothing but Open: Pebble replays its write-ahead log,
// and since every event and its projection updates are written in one batch,
// log and projections are consistent afterwards.
func Open(dir string, opts *Options) (*DB, error) {
	po := pebbleOptions(opts)
	sched := newScheduler()
	po.Experimental.CompactionScheduler = sched
	pdb, err := pebble.Open(dir, po)
	po.Cache.Unref() // the DB holds its own reference
	if err != nil {
		sched.Unregister() // in case Pebble registered and did not unregister
		return nil, fmt.Errorf("eventlog: opening pebble store in %s: %w", dir, err)
	}
	sched.open() // compactions held back while Open ran (see scheduler)
	return &DB{pdb: pdb}, nil
}

func pebbleOptions(opts *Options) *pebble.Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 128 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 8 << 20
	}
	if o.L0CompactionThreshold <= 0 {
		o.L0CompactionThreshold = 16
	}
	if o.L0StopWritesThreshold <= 0 {
		o.L0StopWritesThreshold = 48
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cache := pebble.NewCache(o.CacheSize) // Open drops this reference
	po := &pebble.Options{
		FormatMajorVersion:          FormatMajorVersion,
		Cache:                       cache,
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       o.L0CompactionThreshold,
		L0StopWritesThreshold:       o.L0StopWritesThreshold,
		LBaseMaxBytes:               64 << 20,
		DisableWAL:                  false, // durability: every acknowledged batch is in the synced WAL
		FS:                          o.FS,
		Logger:                      pebbleLogger{o.Logger},
	}
	maxCompactions := max(1, runtime.GOMAXPROCS(0))
	po.CompactionConcurrencyRange = func() (int, int) { return 1, maxCompactions }
	for i := range po.Levels {
		l := &po.Levels[i]
		// Point lookups (events by seq, transaction ids, current documents)
		// go through Get, which consults a table's bloom filter before
		// reading a block: 10 bits per key, ~1% false positives.
		l.FilterPolicy = bloom.FilterPolicy(10)
		l.BlockSize = 32 << 10 // events and documents are large-ish values
		l.IndexBlockSize = 256 << 10
	}
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	po.EnsureDefaults()
	return po
}

// pebbleLogger forwards Pebble's errors to slog and drops its chatter.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(msg)
}

// Pebble returns the underlying Pebble database, for creating the batches
// that Append and the projections write into and for committing them.
func (db *DB) Pebble() *pebble.DB { return db.pdb }

// Log returns the event log of dataset. Logs are cheap handles; two handles
// on the same dataset see the same data.
func (db *DB) Log(dataset uint32) *Log {
	return &Log{db: db, dataset: dataset, events: KeyPrefix(dataset, SpaceEvents)}
}

// Close flushes nothing extra and closes the store; batches already
// committed with pebble.Sync are durable, others may be lost.
func (db *DB) Close() error { return db.pdb.Close() }
