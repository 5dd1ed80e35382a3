package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var getPerspective string

var getCmd = &cobra.Command{
	Use:   "get ID...",
	Short: "Print documents by id, one JSON object per line",
	Long: `get prints the documents with the given ids that exist, in the order given,
one JSON object per line; ids that are not found print nothing.

--perspective chooses what is seen: raw (every document as stored, drafts
included), published (no drafts) or drafts (a draft stands in for its
published document, with _originalId naming the draft).`,
	Example: `  vellum get post-1
  vellum get --perspective drafts post-1 post-2`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{fmt.Errorf("get needs at least one document id")}
		}
		return nil
	},
	RunE: runGet,
}

func init() {
	getCmd.Flags().StringVar(&getPerspective, "perspective", "raw", "raw, published or drafts")
	rootCmd.AddCommand(getCmd)
}

func runGet(cmd *cobra.Command, ids []string) error {
	switch getPerspective {
	case "raw", "published", "drafts":
	default:
		return usageError{fmt.Errorf("--perspective %q: want raw, published or drafts", getPerspective)}
	}
	s, dataset, err := dialDataset(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	docs, err := s.client.Get(s.ctx, dataset, ids, getPerspective)
	if err != nil {
		subject, _ := natsapi.GetSubject(dataset)
		return s.failure(cmd, subject, err)
	}
	for _, d := range docs {
		if err := printJSONLine(cmd, d); err != nil {
			return err
		}
	}
	return nil
}
