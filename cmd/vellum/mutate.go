package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var mutateFile string

var mutateCmd = &cobra.Command{
	Use:   "mutate [--file FILE]",
	Short: "Apply a transaction to the dataset and print its result",
	Long: `mutate reads a transaction from standard input (or --file) in Sanity's shape,
{"mutations":[...],"transactionId"?,"dryRun"?,"returnIds"?,"returnDocuments"?},
sends it to the dataset and prints the result JSON
{"transactionId":...,"results":[{"id":...,"operation":...}]}.

If vellumd rejects the transaction, nothing is written: the typed error
{"error":{"code":...,"description":...,"index"?:...}} is printed on standard
output and the exit status is 1.`,
	Example: `  echo '{"mutations":[{"create":{"_id":"post-1","_type":"post","title":"Hello"}}]}' | vellum mutate
  vellum mutate --file tx.json`,
	Args: noArgs,
	RunE: runMutate,
}

func init() {
	mutateCmd.Flags().StringVarP(&mutateFile, "file", "f", "", "read the transaction from FILE instead of standard input (- is standard input)")
	rootCmd.AddCommand(mutateCmd)
}

func runMutate(cmd *cobra.Command, _ []string) error {
	dataset, err := requireDataset()
	if err != nil {
		return err
	}
	tx, err := readTransaction(cmd)
	if err != nil {
		return err
	}
	s, err := dial(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.client.Mutate(s.ctx, dataset, tx)
	if err != nil {
		subject, _ := natsapi.MutateSubject(dataset)
		return s.failure(cmd, subject, err)
	}
	return printJSONLine(cmd, res)
}

func readTransaction(cmd *cobra.Command) ([]byte, error) {
	if mutateFile != "" && mutateFile != "-" {
		data, err := os.ReadFile(mutateFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--file: %w", err)}
		}
		return data, nil
	}
	if f, ok := cmd.InOrStdin().(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "vellum: reading the transaction from the terminal; end it with Ctrl-D")
		}
	}
	data, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return nil, fmt.Errorf("reading the transaction from standard input: %w", err)
	}
	return data, nil
}
