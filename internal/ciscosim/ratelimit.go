package ciscosim

import "time"

// Cisco's documented limits per API key.
var (
	adminLimits = []limit{{time.Second, 5}, {time.Minute, 14}, {30 * time.Minute, 350}}
	tokenLimits = []limit{{time.Minute, 20}}
)

type limit struct {
	window time.Duration
	calls  int
}

// allow records a call unless it exceeds a limit.
func allow(log map[string][]time.Time, key string, limits []limit, now time.Time) bool {
	calls := log[key]
	longest := limits[len(limits)-1].window
	i := 0
	for i < len(calls) && now.Sub(calls[i]) >= longest {
		i++
	}
	calls = calls[i:]
	for _, l := range limits {
		n := 0
		for _, c := range calls {
			if now.Sub(c) < l.window {
				n++
			}
		}
		if n >= l.calls {
			log[key] = calls
			return false
		}
	}
	log[key] = append(calls, now)
	return true
}
