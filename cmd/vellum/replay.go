package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	replayTo   string
	replayInto string
)

var replayCmd = &cobra.Command{
	Use:   "replay --to SEQ|TXID|TIME --into DIR",
	Short: "Build a read-only copy of the dataset as of a point, in DIR",
	Long: `replay copies the dataset's log, from its first event up to the point --to
names (an event sequence number, a transaction id or an RFC 3339 time: the
last event at or before it), from vellumd into a new store in DIR, and
rebuilds the documents and their history from those events.

The copy's events are the source's, unchanged: the same sequence numbers,
transaction ids, times, identities, grants and hashes, so its hash chain
verifies and its last hash is the source's hash of that event (both are
checked before replay finishes). Serve the copy with

  vellumd --data DIR --read-only

which answers reads, exports and history as the dataset was at that point,
and refuses every write with a readOnly error.

Reading the log needs the administrator role for the dataset. DIR must not
exist or be empty; if replay fails, it leaves nothing behind. It prints
{"dataset":...,"dir":...,"aclMode":...,"events":N,"headHash":...,"documents":N}.
Progress goes to standard error.`,
	Example: `  vellum replay --to 2026-11-23T10:00:00Z --into ./blog-at-10
  vellum replay --to 1234 --into ./blog-at-1234
  vellumd --data ./blog-at-10 --read-only --nats-listen 127.0.0.1:4223`,
	Args: noArgs,
	RunE: runReplay,
}

func init() {
	f := replayCmd.Flags()
	f.StringVar(&replayTo, "to", "", "the last event to copy: event number, transaction id or RFC 3339 time (required)")
	f.StringVar(&replayInto, "into", "", "a new or empty directory for the copy (required)")
	rootCmd.AddCommand(replayCmd)
}

func runReplay(cmd *cobra.Command, _ []string) error {
	if replayTo == "" || replayInto == "" {
		return usageError{errors.New("replay needs --to SEQ|TXID|TIME and --into DIR")}
	}
	dataset, err := requireDataset()
	if err != nil {
		return err
	}
	if _, err := vellum.ParsePoint(replayTo); err != nil {
		return usageError{fmt.Errorf("--to: %s", vellum.AsError(err).Description)}
	}
	s, err := dial(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	subject, _ := natsapi.EventsSubject(dataset)
	// A directory that is not empty is refused before asking vellumd.
	if err := vellum.CheckReplayDir(replayInto); err != nil {
		return s.failure(cmd, subject, err)
	}
	first, err := pageRequest(cmd.Context(), func(ctx context.Context) (*vellum.EventsPage, error) {
		return s.client.EventsPage(ctx, dataset, natsapi.EventsRequest{To: replayTo})
	})
	if err != nil {
		return s.failure(cmd, subject, err)
	}
	prog := newProgress(cmd.ErrOrStderr(), "replay", "events", int64(first.To))
	src := func(ctx context.Context, emit func([]byte) error) error {
		return vellum.PageEvents(ctx, first, func(ctx context.Context, after uint64, limit int) (*vellum.EventsPage, error) {
			return pageRequest(ctx, func(ctx context.Context) (*vellum.EventsPage, error) {
				return s.client.EventsPage(ctx, dataset, natsapi.EventsRequest{ToSeq: first.To, After: after, Limit: limit})
			})
		}, emit)
	}
	res, err := vellum.Replay(cmd.Context(), replayInto, dataset, first.ACL, src, vellum.ReplayOptions{
		Events:   first.To,
		Logger:   slog.New(slog.DiscardHandler),
		Progress: func(n uint64) { prog.Set(int64(n)) },
	})
	prog.Finish()
	if err != nil {
		return s.failure(cmd, subject, err)
	}
	return printValue(cmd, res)
}
