package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var historyCmd = &cobra.Command{
	Use:   "history",
	Short: "Read the past: documents at a revision or time, and the transaction log",
	Long: `history reads a dataset's past under the caller's current read grants: a
document's past versions, and the transactions that changed it, are visible
to whoever may read the document (as it was then) today. See docs/audit.md.`,
}

var (
	historyRev  string
	historyTime string
)

var historyGetCmd = &cobra.Command{
	Use:   "get ID... (--rev TXID | --time TIME)",
	Short: "Print documents as they were at a revision or a time",
	Long: `get prints the documents with the given ids as they were at a revision (the
id of the transaction that wrote that version, which is the version's _rev)
or at a time (RFC 3339: the version current then), as Sanity's history API
answers: one JSON object {"documents":[...]}, in the order of the ids.

A document that did not exist then, that the revision did not write, or that
you may not read is a documentNotFound error; an unknown revision is
unknownTransaction; a time before the dataset's first transaction is
timeBeforeDataset.`,
	Example: `  vellum history get post-1 --time 2026-11-23T10:00:00Z
  vellum history get post-1 post-2 --rev 01JDXYZABCDEF`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{errors.New("history get needs at least one document id")}
		}
		return nil
	},
	RunE: runHistoryGet,
}

var (
	logFrom    string
	logTo      string
	logAuthor  string
	logLimit   int
	logReverse bool
)

var historyLogCmd = &cobra.Command{
	Use:   "log [ID...] [--from TIME|TXID|SEQ] [--to TIME|TXID|SEQ] [--author ID] [--limit N] [--reverse]",
	Short: "Print the transaction log as NDJSON",
	Long: `log prints the dataset's transactions, oldest first (newest first with
--reverse), one JSON object per line in the shape of Sanity's transaction log:
id, timestamp, author, documentIDs, mutations and effects. effects maps each
document id to what the transaction did to it: operation, previousRev,
resultRev, the whole resulting document ("document") or a jsondiff patch
against the previous version ("diff"), and the grant that allowed it
({"group":..., "index":...}). seq, previousHash and hash place the
transaction in the dataset's hash chain.

With document ids, only the transactions that changed one of them are listed
(found through the documents' history index). --from and --to bound the log
(inclusive): a time (RFC 3339), a transaction id or an event number. Only the
effects on documents you may read are shown; a transaction that also changed
others has "redacted":true and null mutations.`,
	Example: `  vellum history log post-1
  vellum history log --from 2026-11-23T00:00:00Z --author alice --limit 10
  vellum history log --reverse --limit 1`,
	RunE: runHistoryLog,
}

func init() {
	f := historyGetCmd.Flags()
	f.StringVar(&historyRev, "rev", "", "the revision: the id of the transaction that wrote the version")
	f.StringVar(&historyTime, "time", "", "the time, RFC 3339 (e.g. 2026-11-23T10:00:00Z)")
	f = historyLogCmd.Flags()
	f.StringVar(&logFrom, "from", "", "first transaction: a time, transaction id or event number")
	f.StringVar(&logTo, "to", "", "last transaction: a time, transaction id or event number")
	f.StringVar(&logAuthor, "author", "", "only the transactions of this identity")
	f.IntVar(&logLimit, "limit", 0, "at most this many transactions (0: all)")
	f.BoolVar(&logReverse, "reverse", false, "newest first")
	historyCmd.AddCommand(historyGetCmd, historyLogCmd)
	rootCmd.AddCommand(historyCmd)
}

// checkTime checks that s is an RFC 3339 time, for the flag named flag.
func checkTime(flag, s string) error {
	if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err != nil {
		return usageError{fmt.Errorf("%s %q is not an RFC 3339 time (such as 2026-11-23T10:00:00Z or 2026-11-23T11:00:00.5+01:00)", flag, s)}
	}
	return nil
}

func runHistoryGet(cmd *cobra.Command, ids []string) error {
	switch {
	case historyRev != "" && historyTime != "":
		return usageError{errors.New("--rev and --time name different points of history: give one of them")}
	case historyRev == "" && historyTime == "":
		return usageError{errors.New("history get needs --rev TXID or --time TIME")}
	case historyTime != "":
		if err := checkTime("--time", historyTime); err != nil {
			return err
		}
	}
	s, dataset, err := dialDataset(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	docs, err := s.client.History(s.ctx, dataset, natsapi.HistoryRequest{IDs: ids, Revision: historyRev, Time: historyTime})
	if err != nil {
		subject, _ := natsapi.HistorySubject(dataset)
		return s.failure(cmd, subject, err)
	}
	return printValue(cmd, natsapi.HistoryResponse{Documents: docs})
}

func runHistoryLog(cmd *cobra.Command, ids []string) error {
	if logLimit < 0 {
		return usageError{fmt.Errorf("--limit %d: give a positive number, or 0 for all", logLimit)}
	}
	for _, p := range []struct{ flag, value string }{{"--from", logFrom}, {"--to", logTo}} {
		if _, err := vellum.ParsePoint(p.value); err != nil {
			return usageError{fmt.Errorf("%s: %s", p.flag, vellum.AsError(err).Description)}
		}
	}
	s, dataset, err := dialDataset(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	r := natsapi.TransactionsRequest{IDs: ids, From: logFrom, To: logTo, Author: logAuthor, Limit: logLimit, Reverse: logReverse}
	// Each page has its own --timeout: a long log takes many pages.
	err = natsapi.TransactionPages(r, func(r natsapi.TransactionsRequest) (*natsapi.TransactionsPage, error) {
		return pageRequest(cmd.Context(), func(ctx context.Context) (*natsapi.TransactionsPage, error) {
			return s.client.TransactionsPage(ctx, dataset, r)
		})
	}, func(le *vellum.LogEntry) error {
		return printValue(cmd, le)
	})
	if err != nil {
		subject, _ := natsapi.TransactionsSubject(dataset)
		return s.failure(cmd, subject, err)
	}
	return nil
}
