package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var verifySystem bool

var verifyCmd = &cobra.Command{
	Use:   "verify [--system]",
	Short: "Check the dataset's hash chain and projections against its log",
	Long: `verify walks the dataset's hash-chained log and checks that every event holds
the hash of the one before and of its own contents, and that the current
documents, the history index and the time and transaction indexes are exactly
what replaying the log yields. It prints "ok N events" and exits 0, or prints
the first inconsistency (the event's sequence number, what the log says and
what is stored) and exits 1. With --system it verifies the system dataset
(datasets, tokens) instead of --dataset.

It needs the administrator role. Progress goes to standard error: a bar on a
terminal, plain lines otherwise. A large dataset may need a longer --timeout.`,
	Example: `  vellum verify --dataset blog
  vellum verify --system`,
	Args: noArgs,
	RunE: runVerify,
}

func init() {
	verifyCmd.Flags().BoolVar(&verifySystem, "system", false, "verify the system dataset (datasets and tokens)")
	rootCmd.AddCommand(verifyCmd)
}

// failureCodes are the codes of a failed verification, as opposed to a
// failure to verify.
var failureCodes = map[string]bool{"hashChainBroken": true, "projectionMismatch": true, "corruptEvent": true}

func runVerify(cmd *cobra.Command, _ []string) error {
	dataset := "_system"
	if !verifySystem {
		var err error
		if dataset, err = requireDataset(); err != nil {
			return err
		}
	}
	s, err := dial(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	prog := newProgress(cmd.ErrOrStderr(), "verify", "events", 0)
	n, err := s.client.Verify(s.ctx, dataset, func(done, total uint64) {
		prog.SetTotal(int64(total))
		prog.Set(int64(done))
	})
	var e *vellum.Error
	if errors.As(err, &e) && failureCodes[e.Code] {
		prog.Finish()
		line := fmt.Sprintf("FAILED %s at event %s: %s", e.Code, number(e.Details["seq"]), e.Description)
		if exp, ok := e.Details["expected"]; ok {
			line += fmt.Sprintf("\n  expected: %v\n  found:    %v", exp, e.Details["found"])
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
		return exitError{1}
	}
	if err != nil {
		return s.failure(cmd, natsapi.SubjectVerify, err)
	}
	prog.Set(int64(n))
	prog.Finish()
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "ok %d events\n", n)
	return err
}

// number prints a JSON number without an exponent.
func number(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
