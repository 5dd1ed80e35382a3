package natsapi

import "time"

// SetListenHeartbeat sets the heartbeat interval of listeners started from
// now on, for tests that watch abandoned listeners being freed; it returns
// a function that restores the previous interval.
func SetListenHeartbeat(d time.Duration) (restore func()) {
	old := listenHeartbeat
	listenHeartbeat = d
	return func() { listenHeartbeat = old }
}
