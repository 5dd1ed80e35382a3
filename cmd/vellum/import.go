package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var importBatchSize int

var importCmd = &cobra.Command{
	Use:   "import FILE",
	Short: "Load an NDJSON file of documents into the dataset, all or nothing",
	Long: `import loads FILE (- for standard input), one JSON document per line as
export writes them, into the dataset: each document is written with
createOrReplace, --batch-size documents per transaction, as the caller, so
every batch is an ordinary audited transaction that the caller's grants must
allow. _id, _type, _createdAt and the content are kept; _rev and _updatedAt
are the import's.

Nothing is written unless every line is acceptable. First every line is
checked (a JSON object, a valid _id, a _type, no _id twice, small enough
for one request), then every batch is sent as a dry run, which checks the
mutations and the caller's grants without writing. Rejected lines are
printed on standard output, one JSON object per line
({"line":N,"id":...,"code":...,"reason":...}), followed by the error, and the
exit status is 1. Only when no line is rejected are the batches written.

The transaction id of each batch is derived from the file and the batch's
documents, so importing the same file again applies nothing twice. If a
batch fails while writing (the daemon stopped, access changed meanwhile),
the error says which batches were committed; running the same import again
completes it.

On success it prints {"lines":...,"documents":...,"batches":...,"written":...,"transactions":[...]}.
Progress goes to standard error.`,
	Example: `  vellum export --dataset blog > blog.ndjson
  vellum import --dataset blog-copy blog.ndjson`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("import needs exactly one FILE (- for standard input), got %d arguments", len(args))}
		}
		return nil
	},
	RunE: runImport,
}

func init() {
	importCmd.Flags().IntVar(&importBatchSize, "batch-size", 256, "documents per transaction")
	rootCmd.AddCommand(importCmd)
}

func runImport(cmd *cobra.Command, args []string) error {
	dataset, err := requireDataset()
	if err != nil {
		return err
	}
	if importBatchSize < 1 {
		return usageError{fmt.Errorf("--batch-size %d: it must be at least 1", importBatchSize)}
	}
	var in io.Reader
	if args[0] == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		in = bytes.NewReader(data)
	} else {
		f, err := os.Open(args[0])
		if err != nil {
			return usageError{fmt.Errorf("FILE: %w", err)}
		}
		defer f.Close()
		in = f
	}
	s, err := dial(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	subject, _ := natsapi.MutateSubject(dataset)

	var prog *progress
	pass := ""
	tx := func(ctx context.Context, body []byte) error {
		_, err := pageRequest(cmd.Context(), func(ctx context.Context) (any, error) {
			return s.client.Mutate(ctx, dataset, body)
		})
		return err
	}
	rep, err := vellum.Import(cmd.Context(), in, tx, vellum.ImportOptions{
		BatchSize: importBatchSize,
		// A batch must fit one NATS message, with room for the envelope.
		MaxBatchBytes: int(min(s.nc.MaxPayload()-8<<10, 4<<20)),
		Progress: func(p string, done, total int64) {
			if p != pass {
				prog.Finish()
				pass = p
				prog = newProgress(cmd.ErrOrStderr(), "import ("+p+")", "documents", total)
			}
			prog.Set(done)
		},
	})
	prog.Finish()
	if rep != nil {
		for _, r := range rep.Rejected {
			if err := printValue(cmd, r); err != nil {
				return err
			}
		}
	}
	if err != nil {
		return s.failure(cmd, subject, err)
	}
	rep.Rejected = nil
	return printValue(cmd, struct {
		Lines        int      `json:"lines"`
		Documents    int      `json:"documents"`
		Batches      int      `json:"batches"`
		Written      int      `json:"written"`
		Transactions []string `json:"transactions"`
	}{rep.Lines, rep.Documents, rep.Batches, rep.Written, rep.Transactions})
}
