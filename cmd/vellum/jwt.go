package main

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum/authz"
)

var (
	jwtSecretFile    string
	jwtSub           string
	jwtGroups        []string
	jwtTTL           time.Duration
	jwtIssuer        string
	jwtAudience      string
	jwtIdentityClaim string
	jwtGroupsClaim   string
)

// minJWTSecret is the shortest HS256 secret vellumd accepts.
const minJWTSecret = 32

var jwtCmd = &cobra.Command{
	Use:   "jwt",
	Short: "Make end-user JWTs for trying access control out (offline, no daemon)",
}

var jwtSignCmd = &cobra.Command{
	Use:   "sign --secret-file FILE --sub ID [--group NAME]... [--ttl 1h]",
	Short: "Print an HS256 JWT for the end user ID, signed with the secret in FILE",
	Long: `sign makes the kind of JWT an application's own auth issues to its users and
vellumd verifies with --jwt-hs256-secret-file: signed with HS256 by the
secret in FILE (its content, surrounding white space trimmed, as vellumd
reads it), with the identity claim (--identity-claim, default sub), exp
(now + --ttl), iat, and, when given, the groups claim (--groups-claim,
default groups), iss and aud. It prints the JWT alone on one line.

It is meant for development and tests: in production the application's auth
server signs the tokens and vellumd only holds the secret to verify them.`,
	Example: `  head -c 32 /dev/urandom | base64 > jwt.secret
  export VELLUM_TOKEN=$(vellum jwt sign --secret-file jwt.secret --sub alice)`,
	Args: noArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		if jwtSecretFile == "" || jwtSub == "" {
			return usageError{fmt.Errorf("jwt sign needs --secret-file and --sub")}
		}
		if jwtTTL <= 0 {
			return usageError{fmt.Errorf("--ttl %s: want a positive duration such as 1h", jwtTTL)}
		}
		if jwtIdentityClaim == "" || jwtGroupsClaim == "" {
			return usageError{fmt.Errorf("--identity-claim and --groups-claim must not be empty")}
		}
		secret, err := authz.ReadHS256SecretFile(jwtSecretFile)
		if err != nil {
			return usageError{fmt.Errorf("--secret-file: %v", err)}
		}
		if len(secret) < minJWTSecret {
			return usageError{fmt.Errorf("--secret-file %s: the secret is %d bytes long once trimmed; vellumd needs at least %d", jwtSecretFile, len(secret), minJWTSecret)}
		}
		now := time.Now()
		claims := jwt.MapClaims{
			jwtIdentityClaim: jwtSub,
			"iat":            now.Unix(),
			"exp":            now.Add(jwtTTL).Unix(),
		}
		if len(jwtGroups) > 0 {
			claims[jwtGroupsClaim] = jwtGroups
		}
		if jwtIssuer != "" {
			claims["iss"] = jwtIssuer
		}
		if jwtAudience != "" {
			claims["aud"] = jwtAudience
		}
		signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		if err != nil {
			return fmt.Errorf("signing the JWT: %w", err)
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), signed)
		return err
	},
}

func init() {
	f := jwtSignCmd.Flags()
	f.StringVar(&jwtSecretFile, "secret-file", "", "the HS256 secret, as given to vellumd's --jwt-hs256-secret-file")
	f.StringVar(&jwtSub, "sub", "", "the user's identity id (a-zA-Z0-9_-)")
	f.StringArrayVar(&jwtGroups, "group", nil, "a group name for the groups claim (repeatable)")
	f.DurationVar(&jwtTTL, "ttl", time.Hour, "how long the JWT is valid")
	f.StringVar(&jwtIssuer, "iss", "", "the iss claim (see vellumd --jwt-issuer)")
	f.StringVar(&jwtAudience, "aud", "", "the aud claim (see vellumd --jwt-audience)")
	f.StringVar(&jwtIdentityClaim, "identity-claim", "sub", "the claim that holds --sub (see vellumd --jwt-identity-claim)")
	f.StringVar(&jwtGroupsClaim, "groups-claim", "groups", "the claim that holds the --group names (see vellumd --jwt-groups-claim)")
	jwtCmd.AddCommand(jwtSignCmd)
	rootCmd.AddCommand(jwtCmd)
}
