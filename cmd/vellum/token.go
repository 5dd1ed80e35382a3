package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	tokenName    string
	tokenRole    string
	tokenDataset string
)

var tokenCmd = &cobra.Command{
	Use:   "token",
	Short: "Create, list and revoke robot tokens (administrator only)",
	Long: `Robot tokens are credentials for programs: each has a name, one built-in
role (administrator, editor, developer, contributor or viewer) and the
dataset the role applies to (or every dataset). Requests made with one
record the identity "token-NAME". Only their hashes are stored.`,
}

var tokenCreateCmd = &cobra.Command{
	Use:   "create --name NAME --role ROLE [--dataset D]",
	Short: "Create a robot token and print its secret, once, as the last line",
	Long: `create makes a robot token with the role ROLE in the dataset D (--dataset), or
in every dataset when --dataset is not given (VELLUM_DATASET does not apply
here: a token's scope is always said on the command line).

It prints a line describing the token, then the secret alone on the last
line of standard output. The secret is shown only now;
vellumd keeps only its hash. Pipe through "tail -1" to keep just the secret.`,
	Example: `  vellum token create --name ci-deploy --role editor --dataset blog
  export DEPLOY_TOKEN=$(vellum token create --name ci-deploy --role editor --dataset blog | tail -1)`,
	Args: noArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		if tokenName == "" || tokenRole == "" {
			return usageError{fmt.Errorf("token create needs --name and --role")}
		}
		if tokenDataset != "" {
			if err := natsapi.ValidateDatasetName(tokenDataset); err != nil {
				return usageError{fmt.Errorf("--dataset: %v", err)}
			}
		}
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		r, err := s.client.CreateToken(s.ctx, tokenName, tokenRole, tokenDataset)
		if err != nil {
			return s.failure(cmd, natsapi.SubjectTokenCreate, err)
		}
		scope := "every dataset"
		if r.Token.Dataset != "" {
			scope = "dataset " + r.Token.Dataset
		}
		fmt.Fprintf(cmd.OutOrStdout(), "created robot token %s (identity %s): %s of %s; its secret, shown only now:\n%s\n",
			r.Token.Name, r.Token.Identity, r.Token.Role, scope, r.Secret)
		return nil
	},
}

var tokenListCmd = &cobra.Command{
	Use:   "list",
	Short: "Print the robot tokens, one JSON object per line (never their secrets)",
	Args:  noArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		list, err := s.client.Tokens(s.ctx)
		if err != nil {
			return s.failure(cmd, natsapi.SubjectTokenList, err)
		}
		for _, t := range list {
			if err := printValue(cmd, t); err != nil {
				return err
			}
		}
		return nil
	},
}

var tokenRevokeCmd = &cobra.Command{
	Use:   "revoke NAME",
	Short: "Revoke a robot token: its next request fails",
	Long: `revoke marks the token NAME revoked and prints its record. Every request made
with it from then on is refused as unauthorized. The record stays, for
audit; revoking a revoked token changes nothing.`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("token revoke needs exactly one NAME, got %d arguments", len(args))}
		}
		return nil
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		s, err := dial(cmd)
		if err != nil {
			return err
		}
		defer s.Close()
		t, err := s.client.RevokeToken(s.ctx, args[0])
		if err != nil {
			return s.failure(cmd, natsapi.SubjectTokenRevoke, err)
		}
		return printValue(cmd, t)
	},
}

func init() {
	f := tokenCreateCmd.Flags()
	f.StringVar(&tokenName, "name", "", "the token's name: 1 to 122 of a-z, A-Z, 0-9, _ and -")
	f.StringVar(&tokenRole, "role", "", "administrator, editor, developer, contributor or viewer")
	// Shadows the global --dataset (and VELLUM_DATASET) on purpose.
	f.StringVar(&tokenDataset, "dataset", "", "the dataset the role applies to (default: every dataset)")
	tokenCmd.AddCommand(tokenCreateCmd, tokenListCmd, tokenRevokeCmd)
	rootCmd.AddCommand(tokenCmd)
}
