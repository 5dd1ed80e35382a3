package eventlog

import (
	"bytes"
	"testing"
	"time"
)

func TestAppendTimeKey(t *testing.T) {
	for _, tt := range []struct {
		dataset uint32
		t       time.Time
		seq     uint64
	}{
		{0, time.Unix(0, 0), 1},
		{7, time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC), 1 << 40},
		{1<<32 - 1, time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), 3},
	} {
		prefix := []byte("xyz")
		got := AppendTimeKey(prefix, tt.dataset, tt.t, tt.seq)
		if want := append([]byte("xyz"), TimeKey(tt.dataset, tt.t, tt.seq)...); !bytes.Equal(got, want) {
			t.Errorf("AppendTimeKey(%d, %v, %d) = %x, want %x", tt.dataset, tt.t, tt.seq, got, want)
		}
	}
}
