package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	accessDoc  string
	accessAt   string
	accessJSON bool
)

var accessCmd = &cobra.Command{
	Use:   "access --doc ID --at TIME [--json]",
	Short: "Show who could read and who could update a document at a time",
	Long: `access reconstructs, from the log, who could read and who could update a
document at a time (RFC 3339): the document as it was then, the dataset's
group documents (_.groups.*) and acl mode as they were then, and the robot
tokens valid then, decided by the same policy code as a live request.

It lists, for read and for update: the identities (everyone, the members named
in group documents, "authenticated", the robot tokens) with the grant that
allowed each; the built-in roles; and the custom groups with their members
then (end users whose JWT names a group are members too). --json prints the
report as one JSON object.

You need to be able to read the document (as it was then) today, as for
history.`,
	Example: `  vellum access --doc post-1 --at 2026-11-23T10:00:00Z
  vellum access --doc post-1 --at 2026-11-23T10:00:00Z --json`,
	Args: noArgs,
	RunE: runAccess,
}

func init() {
	f := accessCmd.Flags()
	f.StringVar(&accessDoc, "doc", "", "the document id")
	f.StringVar(&accessAt, "at", "", "the time, RFC 3339 (e.g. 2026-11-23T10:00:00Z)")
	f.BoolVar(&accessJSON, "json", false, "print the report as JSON")
	rootCmd.AddCommand(accessCmd)
}

func runAccess(cmd *cobra.Command, _ []string) error {
	if accessDoc == "" {
		return usageError{errors.New("access needs --doc ID")}
	}
	if accessAt == "" {
		return usageError{errors.New("access needs --at TIME (RFC 3339, e.g. 2026-11-23T10:00:00Z)")}
	}
	if err := checkTime("--at", accessAt); err != nil {
		return err
	}
	s, dataset, err := dialDataset(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.client.AccessAt(s.ctx, dataset, accessDoc, accessAt)
	if err != nil {
		subject, _ := natsapi.AccessAtSubject(dataset)
		return s.failure(cmd, subject, err)
	}
	if accessJSON {
		return printValue(cmd, rep)
	}
	return printAccess(cmd.OutOrStdout(), rep)
}

// printAccess writes an access report for people.
func printAccess(w io.Writer, r *vellum.AccessReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s at %s (event %d, revision %s, acl %s)\n", r.Document, r.Dataset, r.At, r.Seq, r.Revision, r.ACL)
	for _, p := range []struct {
		name string
		set  vellum.AccessSet
	}{{"read", r.Read}, {"update", r.Update}} {
		fmt.Fprintf(&b, "%s:\n", p.name)
		if len(p.set.Identities)+len(p.set.Roles)+len(p.set.Groups) == 0 {
			b.WriteString("  nobody\n")
			continue
		}
		for _, a := range p.set.Identities {
			kind := a.Kind
			if a.Role != "" {
				kind += ", " + a.Role
			}
			fmt.Fprintf(&b, "  identity %-24s %-28s by %s\n", a.Identity, "("+kind+")", a.Grant)
		}
		var roles []string
		for _, g := range p.set.Roles {
			roles = append(roles, g.Role)
		}
		if len(roles) > 0 {
			fmt.Fprintf(&b, "  roles    %s\n", strings.Join(roles, ", "))
		}
		for _, g := range p.set.Groups {
			dep := ""
			if g.IdentityDependent {
				dep = ", depends on identity()"
			}
			fmt.Fprintf(&b, "  group    %-24s by %s, members: %s%s\n", g.Group, g.Grant, strings.Join(g.Members, ", "), dep)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
