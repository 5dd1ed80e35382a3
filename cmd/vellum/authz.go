package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	explainAs     string
	explainDoc    string
	explainAction string
	explainPatch  string
	explainGroups []string
	explainJSON   bool
)

var authzCmd = &cobra.Command{
	Use:   "authz",
	Short: "Inspect access control",
}

var authzExplainCmd = &cobra.Command{
	Use:   "explain --as IDENTITY --doc ID --action read|create|update|delete [--patch JSON] [--group NAME]...",
	Short: "Say whether an identity may act on a document, grant by grant",
	Long: `explain asks vellumd whether IDENTITY may do ACTION to the document ID of
--dataset, and prints the verdict, the groups IDENTITY belongs to and every
grant of those groups, each with whether it matched and why not.

IDENTITY is "everyone" (no credential), "token-NAME" (a robot token, with its
role) or an end user's id (as in a JWT's identity claim); --group adds a
group name from the user's JWT groups claim (repeatable).

For update, --patch is a patch body such as '{"set":{"title":"x"}}': the
document after it must match too. For create of a document that does not
exist, --patch is the new document. --json prints the explanation as JSON.

Explaining needs the administrator role for the dataset. The exit status is
0 whether the action is allowed or not.`,
	Example: `  vellum authz explain --as alice --doc post-b1 --action update
  vellum authz explain --as alice --doc post-a1 --action update --patch '{"set":{"author":"bob"}}'
  vellum authz explain --as everyone --doc drafts.post-a1 --action read --json`,
	Args: noArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		if explainAs == "" || explainDoc == "" || explainAction == "" {
			return usageError{fmt.Errorf("authz explain needs --as, --doc and --action")}
		}
		switch explainAction {
		case "read", "create", "update", "delete":
		default:
			return usageError{fmt.Errorf("--action %q: want read, create, update or delete", explainAction)}
		}
		var patch json.RawMessage
		if explainPatch != "" {
			var obj map[string]any
			if err := json.Unmarshal([]byte(explainPatch), &obj); err != nil || obj == nil {
				return usageError{fmt.Errorf("--patch is not a JSON object: %v", err)}
			}
			patch = json.RawMessage(explainPatch)
		}
		s, dataset, err := dialDataset(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		x, err := s.client.Explain(s.ctx, dataset, natsapi.ExplainRequest{
			As: explainAs, Groups: explainGroups, ID: explainDoc, Action: explainAction, Patch: patch,
		})
		if err != nil {
			subject, _ := natsapi.ExplainSubject(dataset)
			return s.failure(cmd, subject, err)
		}
		if explainJSON {
			return printValue(cmd, x)
		}
		_, err = fmt.Fprint(cmd.OutOrStdout(), x.String())
		return err
	},
}

func init() {
	f := authzExplainCmd.Flags()
	f.StringVar(&explainAs, "as", "", "the identity id: everyone, token-NAME or an end user's id")
	f.StringVar(&explainDoc, "doc", "", "the document id")
	f.StringVar(&explainAction, "action", "", "read, create, update or delete")
	f.StringVar(&explainPatch, "patch", "", "for update: a patch body (JSON); for create: the new document")
	f.StringArrayVar(&explainGroups, "group", nil, "a group name of the user's JWT groups claim (repeatable)")
	f.BoolVar(&explainJSON, "json", false, "print the explanation as JSON")
	authzCmd.AddCommand(authzExplainCmd)
	rootCmd.AddCommand(authzCmd)
}
