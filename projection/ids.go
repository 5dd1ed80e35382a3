package projection

import (
	"context"

	"github.com/vellum-db/vellum/eventlog"
)

// IDs calls fn with the id of every current document (drafts and versions
// included), in the order of id, until fn returns an error, which IDs
// returns, or ctx ends. The scan reads an iterator opened when IDs starts:
// documents written later may or may not be seen.
func (s *Store) IDs(ctx context.Context, fn func(id string) error) error {
	it, err := s.newDocIter(s.docs, eventlog.KeyUpperBound(s.dataset, eventlog.SpaceDocs), false)
	if err != nil {
		return err
	}
	defer it.close()
	for n := 0; it.valid(); it.next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(it.id()); err != nil {
			return err
		}
	}
	return it.err()
}
