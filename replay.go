package vellum

// CodeReadOnly is the error of a write to an engine opened with
// Options.ReadOnly (vellumd --read-only), such as a copy made by Replay.
const CodeReadOnly = "readOnly"

// writable returns a readOnly error saying that action is refused when the
// engine is read-only.
func (e *Engine) writable(action string) error {
	if !e.readOnly {
		return nil
	}
	return errorf(CodeReadOnly, "cannot %s: the store is read-only (vellumd --read-only serves a copy made by `vellum replay`, which refuses every write)", action)
}
