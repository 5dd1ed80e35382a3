package natsapi

import (
	"fmt"
	"strings"

	"github.com/vellum-db/vellum"
)

// Prefix is the root of Vellum's versioned subject space. A change that is
// not backwards compatible gets a new version token, served next to the old.
const Prefix = "vellum.v1"

// The subjects of the service. Per-dataset subjects have the dataset name as
// their fourth token: vellum.v1.ds.<dataset>.<operation>.
const (
	SubjectDatasetCreate = Prefix + ".datasets.create"
	SubjectDatasetList   = Prefix + ".datasets.list"
	SubjectDatasetACL    = Prefix + ".datasets.acl"
	SubjectTokenCreate   = Prefix + ".tokens.create"
	SubjectTokenList     = Prefix + ".tokens.list"
	SubjectTokenRevoke   = Prefix + ".tokens.revoke"

	datasetPrefix  = Prefix + ".ds."
	subjectMutate  = datasetPrefix + "*.mutate" // the endpoint's subscription
	subjectGet     = datasetPrefix + "*.get"
	subjectExplain = datasetPrefix + "*.explain"
	opMutate       = "mutate"
	opGet          = "get"
	opExplain      = "explain"
	datasetNameMax = 64
)

// MutateSubject returns the subject of dataset's transaction endpoint, or an
// invalidDatasetName error if dataset is not a valid dataset name.
func MutateSubject(dataset string) (string, error) { return datasetSubject(dataset, opMutate) }

// GetSubject returns the subject of dataset's document-read endpoint, or an
// invalidDatasetName error if dataset is not a valid dataset name.
func GetSubject(dataset string) (string, error) { return datasetSubject(dataset, opGet) }

// ExplainSubject returns the subject of dataset's access explanation
// endpoint, or an invalidDatasetName error if dataset is not a valid dataset
// name.
func ExplainSubject(dataset string) (string, error) { return datasetSubject(dataset, opExplain) }

func datasetSubject(dataset, op string) (string, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return "", err
	}
	return datasetPrefix + dataset + "." + op, nil
}

// ValidateDatasetName reports whether name matches ^[a-z0-9][a-z0-9_-]{0,63}$,
// the engine's rule for dataset names, which also makes it a safe single NATS
// subject token (no dots, wildcards, spaces or control characters). The error
// is a *vellum.Error with code invalidDatasetName.
func ValidateDatasetName(name string) error {
	why := ""
	switch {
	case name == "":
		why = "it is empty"
	case len(name) > datasetNameMax:
		why = fmt.Sprintf("it is %d bytes long, the limit is %d", len(name), datasetNameMax)
	default:
		for i := 0; i < len(name); i++ {
			c := name[i]
			lowerOrDigit := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if i == 0 && !lowerOrDigit {
				why = fmt.Sprintf("it starts with %q; it must start with a-z or 0-9", rune(c))
				break
			}
			if !lowerOrDigit && c != '_' && c != '-' {
				why = fmt.Sprintf("byte %d is %q; only a-z, 0-9, '_' and '-' are allowed", i, rune(c))
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return &vellum.Error{
		Code:        "invalidDatasetName",
		Description: fmt.Sprintf("dataset name %q is not valid: %s", name, why),
	}
}

// datasetFromSubject extracts and validates the dataset token of a
// per-dataset subject vellum.v1.ds.<dataset>.<op>.
func datasetFromSubject(subject, op string) (string, error) {
	rest, ok := strings.CutPrefix(subject, datasetPrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, "."+op)
	}
	if !ok || strings.Contains(rest, ".") {
		return "", &vellum.Error{
			Code:        "invalidDatasetName",
			Description: fmt.Sprintf("subject %q is not of the form %s<dataset>.%s", subject, datasetPrefix, op),
		}
	}
	if err := ValidateDatasetName(rest); err != nil {
		return "", err
	}
	return rest, nil
}
