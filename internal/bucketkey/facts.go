package bucketkey

import "time"

// Facts are what a decision needs from the organization's config.
type Facts struct {
	// STSURL is the endpoint that checks the key.
	STSURL string
	// KeyCheck says whether keys are checked against AWS STS at all.
	KeyCheck bool
	// Heals says whether a rejected key that AWS accepted before is
	// rotated (rotate_rejected_key, and key_check on).
	Heals bool
	// SharedWith names another config that acts on the same Cisco
	// organization, or is empty. Only a check of a key whose heal is
	// blocked needs it.
	SharedWith string

	// Automated says whether the schedule rotates the key at all.
	Automated bool
	// Period is the rotation period when there is no schedule.
	Period time.Duration
	// HasSchedule says that a rotation_schedule is set; Schedule is it,
	// nil when it does not parse (the 89-day limit then rules).
	HasSchedule bool
	Schedule    Schedule
	// Window is how long after a scheduled run a rotation may start.
	Window time.Duration
	// CheckInterval is how often a served key is routinely checked; zero
	// for never.
	CheckInterval time.Duration
}

// Schedule is a rotation_schedule: its next run after t.
type Schedule interface{ Next(t time.Time) time.Time }
