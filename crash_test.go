package vellum

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test runs a write storm in a child process (this test binary,
// re-executed), SIGKILLs it at a random moment, and checks the store after
// each restart: every acknowledged transaction is there, the hash chain
// verifies, and rebuilding the projections gives the live state byte for
// byte. Several rounds run on the same store.
const crashChildEnv = "VELLUM_CRASH_CHILD_DIR"

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash rounds take a few seconds")
	}
	dir := t.TempDir()
	rounds := 5
	totalAcked, totalIncs := 0, 0
	for round := 0; round < rounds; round++ {
		acked, incs := runCrashChild(t, dir, round)
		totalAcked += len(acked)
		totalIncs += incs

		e := openTest(t, dir)
		ctx := context.Background()
		d, err := e.dataset("crash")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, txid := range acked {
			if _, ok, err := d.log.LookupTx(txid); err != nil || !ok {
				t.Fatalf("round %d: acknowledged transaction %s is missing after the crash (err %v)", round, txid, err)
			}
			if getDoc(t, e, "crash", "doc-"+txid, "") == nil {
				t.Fatalf("round %d: document of acknowledged transaction %s is missing", round, txid)
			}
		}
		counter := getDoc(t, e, "crash", "counter", "")
		if n, _ := counter["n"].(float64); int(n) < totalIncs {
			t.Fatalf("round %d: counter %v is below the %d acknowledged increments", round, counter["n"], totalIncs)
		}
		if n, err := e.Verify(ctx, "crash", nil); err != nil {
			t.Fatalf("round %d: hash chain: %v", round, err)
		} else if n < uint64(totalAcked) {
			t.Fatalf("round %d: %d events, fewer than %d acknowledged", round, n, totalAcked)
		}
		before := dumpDB(t, e.pebbleDB())
		if err := e.Rebuild(ctx, "crash"); err != nil {
			t.Fatal(err)
		}
		after := dumpDB(t, e.pebbleDB())
		if len(before) != len(after) {
			t.Fatalf("round %d: rebuild changed the key count %d → %d", round, len(before), len(after))
		}
		for k, v := range before {
			if !bytes.Equal(after[k], v) {
				t.Fatalf("round %d: rebuild differs from the live state at key %q", round, k)
			}
		}
		e.Close()
		t.Logf("round %d: %d acknowledged transactions survived SIGKILL", round, len(acked))
	}
	if totalAcked == 0 {
		t.Fatal("no transaction was acknowledged before the kills: the test proved nothing")
	}
}

// runCrashChild starts the write storm, kills it after a random delay and
// returns the transaction ids it acknowledged and how many of them were
// counter increments.
func runCrashChild(t *testing.T, dir string, round int) (acked []string, incs int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("VELLUM_CRASH_ROUND=%d", round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				once.Do(func() { close(ready) })
			case strings.HasPrefix(line, "ack "):
				f := strings.Fields(line)
				mu.Lock()
				acked = append(acked, f[1])
				if f[2] == "inc" {
					incs++
				}
				mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("crash child did not start")
	}
	time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return acked, incs
}

// TestCrashChild is the write storm; it only runs as the child of
// TestCrashRecovery.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestCrashRecovery")
	}
	round := os.Getenv("VELLUM_CRASH_ROUND")
	e, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if _, err := e.CreateDataset(ctx, SystemPrincipal, "crash", ""); err != nil && AsError(err).Code != CodeDatasetExists {
		fmt.Fprintln(os.Stderr, "create dataset:", err)
		os.Exit(2)
	}
	e.Transact(ctx, "crash", SystemPrincipal, []byte(`{"mutations":[{"createIfNotExists":{"_id":"counter","_type":"counter","n":0}}]}`))
	var outMu sync.Mutex
	say := func(s string) {
		outMu.Lock()
		os.Stdout.WriteString(s + "\n")
		outMu.Unlock()
	}
	say("ready")
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				txid := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				kind := "doc"
				muts := fmt.Sprintf(`[{"create":{"_id":"doc-%s","_type":"storm","w":%d,"i":%d,"pad":%q}}`, txid, w, i, strings.Repeat("p", rand.IntN(2000)))
				if i%3 == 0 {
					kind = "inc"
					muts += `,{"patch":{"id":"counter","inc":{"n":1}}}`
				}
				body, _ := json.Marshal(map[string]any{"transactionId": txid, "mutations": json.RawMessage(muts + "]")})
				if _, err := e.Transact(ctx, "crash", SystemPrincipal, body); err != nil {
					fmt.Fprintln(os.Stderr, "transact:", err)
					os.Exit(2)
				}
				say("ack " + txid + " " + kind)
			}
		}()
	}
	wg.Wait()
}
