package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var datasetACL string

var datasetCmd = &cobra.Command{
	Use:   "dataset",
	Short: "Create and list datasets, and change their acl mode",
}

var datasetCreateCmd = &cobra.Command{
	Use:   "create NAME [--acl public|private]",
	Short: "Create a dataset and print it as JSON",
	Long: `create makes a new, empty dataset. NAME is 1 to 64 characters: a-z, 0-9, '_'
and '-', starting with a letter or digit. A public dataset's root-path
documents (ids without a dot) are readable by everyone once access control
applies; a private one's are not.`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("dataset create needs exactly one NAME, got %d arguments", len(args))}
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		switch datasetACL {
		case "public", "private":
		default:
			return usageError{fmt.Errorf("--acl %q: want public or private", datasetACL)}
		}
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		info, err := s.client.CreateDataset(s.ctx, args[0], datasetACL)
		if err != nil {
			return s.failure(cmd, natsapi.SubjectDatasetCreate, err)
		}
		return printValue(cmd, info)
	},
}

var datasetListCmd = &cobra.Command{
	Use:   "list",
	Short: "Print the datasets, one JSON object per line",
	Args:  noArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		list, err := s.client.Datasets(s.ctx)
		if err != nil {
			return s.failure(cmd, natsapi.SubjectDatasetList, err)
		}
		for _, d := range list {
			if err := printValue(cmd, d); err != nil {
				return err
			}
		}
		return nil
	},
}

var datasetACLCmd = &cobra.Command{
	Use:   "acl NAME public|private",
	Short: "Change a dataset's acl mode and print the dataset as JSON",
	Long: `acl makes the dataset NAME public (everyone, without a credential, may read
its documents on the root path: ids without a dot) or private (everyone may
read nothing). The change applies from the very next request. It needs the
administrator role for every dataset.`,
	Example: `  vellum dataset acl blog private`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usageError{fmt.Errorf("dataset acl needs NAME and public or private, got %d arguments", len(args))}
		}
		if args[1] != "public" && args[1] != "private" {
			return usageError{fmt.Errorf("dataset acl: %q is not an acl mode: want public or private", args[1])}
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		info, err := s.client.SetDatasetACL(s.ctx, args[0], args[1])
		if err != nil {
			return s.failure(cmd, natsapi.SubjectDatasetACL, err)
		}
		return printValue(cmd, info)
	},
}

func init() {
	datasetCreateCmd.Flags().StringVar(&datasetACL, "acl", "public", "public or private")
	datasetCmd.AddCommand(datasetCreateCmd, datasetListCmd, datasetACLCmd)
	rootCmd.AddCommand(datasetCmd)
}
