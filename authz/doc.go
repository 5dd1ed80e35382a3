// Package authz decides who may do what to which document: it authenticates
// bearer credentials (robot tokens and end-user JWTs) into principals, parses
// and validates group documents (_.groups.NAME, with path or GROQ-filter
// grants), and evaluates read, create, update, delete and manage decisions
// against a dataset's policy, naming the grant that allowed each one.
package authz
