package projection

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
	"github.com/vellum-db/vellum/eventlog"
)

// IDs calls fn with the id of every current document (drafts and versions
// included), in the order of id, until fn returns an error, which IDs
// returns, or ctx ends. id is only valid during the call. The scan reads
// an iterator opened when IDs starts: documents written later may or may
// not be seen.
func (s *Store) IDs(ctx context.Context, fn func(id []byte) error) error {
	it, err := s.pdb.NewIter(&pebble.IterOptions{
		LowerBound: s.docs,
		UpperBound: eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok, n := it.First(), 0; ok; ok, n = it.Next(), n+1 {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(it.Key()[len(s.docs):]); err != nil {
			return err
		}
	}
	return it.Error()
}
