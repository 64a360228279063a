// Package backend is a Vault secrets engine that rotates the IAM key of a
// Cisco-managed S3 log bucket (Cisco Umbrella and Cisco Secure Access) and
// serves the current key pair.
//
// # Locks
//
// Taken in this order, never the other way round:
//
//  1. loadMu, then settleMu: the first load of the mount (ensureLoaded)
//     and, first within it, the settling of the WAL (ensureSettled), which
//     takes name locks. Reads of one organization (creds, verify) wait
//     only for settleMu. Nothing takes either under a name lock, because
//     lockOrg loads before it locks.
//  2. A name's lock (lockOrg, lockName): every change to one organization.
//     Holding it is a *lockedOrg, whose methods are the only writers of the
//     organization's stored and cached state. No code holds two names.
//  3. An API key's turn (cisco.Limiter): one Cisco call at a time per API
//     key, taken under the name's lock by a rotation.
//  4. Leaves, held only for a few lines and never while taking another
//     lock: the cache's own mutex (orgcache), the scheduler's mu,
//     inflightMu, clientMu, the probes' mu, the checker's and the limiter's.
//
// Every wait for a lock of 1 to 3 ends with the caller's context (loadMu
// and settleMu are ctxMutex), so that neither the periodic tick nor a read
// waits past its deadline for a load that may run for minutes.
//
// walPending, settled and loaded are atomics; they order nothing.
//
// # Words
//
// The key's states and the events that move it between them are
// internal/bucketkey's; docs/development.md has its transition table.
//
//   - stale: a rotation's outcome is unknown, so Cisco may have replaced the
//     served key; the key is marked and recovered as soon as possible.
//   - replaced: Cisco certainly replaced the served key (it issued a key
//     that was lost); no check lifts such a mark.
//   - mark: the stale flag and its error, stored on the key.
//   - lift: a check a minute or more after a mark shows that AWS still
//     accepts the key, so the mark is removed without a rotation.
//   - settle: resolve a rotation WAL entry that no running rotation owns,
//     from what storage shows.
//   - turn: an API key's one slot for a Cisco call.
//   - probe: the background checks of a rotated key until AWS accepts it.
//   - re-check: a check 5 and 15 minutes after a key came out of a stale
//     episode (a lift, or a key stored over a stale one), because a Cisco
//     call that timed out may still land.
//   - routine check: the check of every served key once a
//     key_check_interval, which finds a key killed outside Vault.
//   - rejected: AWS rejected a served key twice, a minute or more apart:
//     it is dead.
//   - heal: the rotation of a rejected key that AWS accepted before.
package backend
