// Package docid validates and interprets document ids: the allowed
// characters and length, paths made by dots, drafts.<id> and
// versions.<release>.<id>, and the generation of new ids.
package docid
