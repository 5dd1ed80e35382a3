package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	exportAt       string
	exportNoDrafts bool
	exportSystem   bool
	exportOutput   string
)

var exportCmd = &cobra.Command{
	Use:   "export [--at SEQ|TXID|TIME] [--no-drafts] [--system] [-o FILE]",
	Short: "Write every document of the dataset as of a point, as NDJSON",
	Long: `export writes the documents of the dataset as they were just after a point of
its history, one JSON document per line (NDJSON, Sanity's export format), in
the order of their ids: on standard output, or into --output FILE (written
under a temporary name and renamed when complete, so FILE never holds half an
export).

--at names the point: an event sequence number (42), an RFC 3339 time
(2026-11-23T10:00:00Z) or a transaction id; without it, the latest state.
The export shows one consistent state, whatever is written while it runs.

Only the documents the caller may read are exported (an administrator reads
all of them). Drafts and release versions are included unless --no-drafts;
system documents (_.groups.* and other _.* ids) only with --system.

Progress goes to standard error: a bar on a terminal, plain lines otherwise.`,
	Example: `  vellum export > blog.ndjson
  vellum export --at 2026-11-23T10:00:00Z -o blog-morning.ndjson
  vellum export --at 01JDXYZ... --no-drafts`,
	Args: noArgs,
	RunE: runExport,
}

func init() {
	f := exportCmd.Flags()
	f.StringVar(&exportAt, "at", "", "the point to export: event number, RFC 3339 time or transaction id (default: the latest state)")
	f.BoolVar(&exportNoDrafts, "no-drafts", false, "leave out drafts (drafts.*) and release versions (versions.*)")
	f.BoolVar(&exportSystem, "system", false, "include system documents (_.* ids, such as group documents)")
	f.StringVarP(&exportOutput, "output", "o", "", "write to FILE instead of standard output")
	rootCmd.AddCommand(exportCmd)
}

func runExport(cmd *cobra.Command, _ []string) error {
	dataset, err := requireDataset()
	if err != nil {
		return err
	}
	if _, err := vellum.ParsePoint(exportAt); err != nil {
		return usageError{fmt.Errorf("--at: %s", vellum.AsError(err).Description)}
	}
	s, err := dial(cmd)
	if err != nil {
		return err
	}
	defer s.Close()

	var out io.Writer = cmd.OutOrStdout()
	var tmp *os.File
	if exportOutput != "" && exportOutput != "-" {
		tmp, err = os.CreateTemp(filepath.Dir(exportOutput), "."+filepath.Base(exportOutput)+".*.partial")
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	w := bufio.NewWriterSize(out, 1<<20)
	prog := newProgress(cmd.ErrOrStderr(), "export", "documents", 0)
	subject, _ := natsapi.ExportSubject(dataset)
	r := natsapi.ExportRequest{At: exportAt, NoDrafts: exportNoDrafts, System: exportSystem}
	var n int64
	for {
		page, err := pageRequest(cmd.Context(), func(ctx context.Context) (*vellum.ExportPage, error) {
			return s.client.ExportPage(ctx, dataset, r)
		})
		if err != nil {
			return s.failure(cmd, subject, err)
		}
		for _, d := range page.Documents {
			w.Write(d)
			w.WriteByte('\n')
		}
		n += int64(len(page.Documents))
		prog.Set(n)
		if !page.More {
			break
		}
		r.Seq, r.After = page.Seq, page.Next
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the export: %w", err)
	}
	prog.Finish()
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		if err := os.Rename(tmp.Name(), exportOutput); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		tmp = nil
	}
	return nil
}

// pageRequest runs one page request of a long operation with its own
// --timeout: the operation as a whole may take much longer than one page.
// The request ends with parent too (the command's, or the operation's).
func pageRequest[T any](parent context.Context, fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(parent, flagTimeout)
	defer cancel()
	return fn(ctx)
}
