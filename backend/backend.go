package backend

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/cisco"
	"vault-plugin-secrets-cisco-s3/internal/orgcache"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// Version is stamped at build time with -ldflags "-X ...backend.Version=v1.2.3".
var Version = "v0.2.0-dev"

// backend is one mount. All state lives here, never in package globals,
// because one plugin process serves many mounts.
type backend struct {
	*framework.Backend
	logger hclog.Logger
	// now is the one clock of every decision about time: due times,
	// backoff, key dates. Tests replace it. Only waits measured against
	// Cisco's rate limits and Vault's deadlines use real time.
	now func() time.Time
	// transport carries every call to Cisco; nil means the default.
	transport http.RoundTripper
	// callTimeout bounds one Cisco call; zero means cisco.CallTimeout.
	callTimeout time.Duration
	// storeRetryWait is the first wait between attempts to store a key
	// (the constant of the same name); tests may shorten it.
	storeRetryWait time.Duration

	// orgs holds every organization's config and key, so that reads and
	// the periodic tick do not touch storage, and the lock of each name.
	// Only a lockedOrg changes an entry.
	orgs *orgcache.Cache[orgEntry]
	// settled is set once the rotation WAL has been settled on this node,
	// and loaded once every organization has been read from storage.
	settled  atomic.Bool
	settleMu ctxMutex
	loaded   atomic.Bool
	loadMu   ctxMutex
	// loads is the background load that initialize starts; clean waits for
	// it, at most loadEndWait, since Vault clears the storage view after.
	loads       sync.WaitGroup
	loadEndWait time.Duration
	clientMu    sync.Mutex
	clients     map[string]*cisco.Client

	inflightMu sync.Mutex
	inflight   map[string]*rotationCall
	// walPending is set when a rotation left its WAL entry behind; the next
	// tick settles it.
	walPending atomic.Bool

	sched *scheduler
	// limiter keeps every Cisco call, manual or scheduled, within the
	// API key's rate limits.
	limiter *cisco.Limiter
	metrics *mountMetrics
	// checker checks keys against AWS STS; probes runs the background
	// checks of rotated keys.
	checker *stscheck.Checker
	probes  *keyProbes

	// lifetime ends when Vault cleans the mount up; it bounds the work
	// that outlives a request, such as the load that initialize starts.
	lifetime context.Context
	stop     context.CancelFunc
}

// Factory builds a backend for one mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(conf)
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(conf *logical.BackendConfig) *backend {
	b := &backend{
		now:      func() time.Time { return time.Now().UTC() },
		orgs:     orgcache.New[orgEntry](),
		clients:  make(map[string]*cisco.Client),
		inflight: make(map[string]*rotationCall),

		settleMu:       newCtxMutex(),
		loadMu:         newCtxMutex(),
		storeRetryWait: storeRetryWait,
		loadEndWait:    10 * time.Second,
	}
	b.lifetime, b.stop = context.WithCancel(context.Background())
	b.sched = newScheduler(b)
	b.limiter = cisco.NewLimiter()
	b.metrics = newMountMetrics()
	b.checker = stscheck.New()
	b.probes = newKeyProbes()
	b.logger = hclog.NewNullLogger()
	if conf != nil && conf.Logger != nil {
		b.logger = conf.Logger
	}
	b.Backend = &framework.Backend{
		Help:        backendHelp,
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{configPrefix, keyPrefix},
			LocalStorage:    []string{framework.WALPrefix},
		},
		Paths: framework.PathAppend(
			pathConfig(b),
			pathRotate(b),
			pathImport(b),
			pathVerify(b),
			pathCreds(b),
			pathStatus(b),
			pathMetrics(b),
		),
		InitializeFunc: b.initialize,
		PeriodicFunc:   b.periodic,
		Invalidate:     b.invalidate,
		Clean:          b.clean,
		RunningVersion: Version,
	}
	return b
}

// initialize starts loading the organizations and settling the rotations
// that a crash left unfinished, in the background: Vault waits for every
// mount's initialize before a node becomes active, and 10,000
// organizations take seconds to read. Reads of one organization wait only
// for the WAL; the periodic tick and the other handlers wait for the load
// (ensureLoaded), and retry it if this one failed.
func (b *backend) initialize(_ context.Context, req *logical.InitializationRequest) error {
	b.loads.Add(1)
	go func() {
		defer b.loads.Done()
		ctx, cancel := context.WithTimeout(b.lifetime, loadTimeout)
		defer cancel()
		if err := b.ensureLoaded(ctx, req.Storage); err != nil {
			b.logger.Warn("could not load the organizations; the next request or tick tries again", "error", err)
		}
	}()
	return nil
}

// loadTimeout bounds the background load that initialize starts.
const loadTimeout = 5 * time.Minute

func (b *backend) clean(context.Context) {
	b.stop()
	// The cancelled load ends at its next storage call; wait for it, so
	// that nothing of this mount touches storage after Cleanup returns.
	ended := make(chan struct{})
	go func() { b.loads.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(b.loadEndWait):
		b.logger.Warn("the background load did not end at cleanup", "waited", b.loadEndWait)
	}
	b.probes.stop()
	b.sched.reset()
	b.clientMu.Lock()
	b.clients = make(map[string]*cisco.Client)
	b.clientMu.Unlock()
}

// client returns the cached Cisco client of an organization. Its token
// survives until the config changes.
func (b *backend) client(name string, cfg *orgConfig) *cisco.Client {
	b.clientMu.Lock()
	defer b.clientMu.Unlock()
	if c, ok := b.clients[name]; ok && c.Settings() == cfg.settings() {
		return c
	}
	c := b.newClient(cfg)
	b.clients[name] = c
	return c
}

// newClient builds a Cisco client whose calls the metrics count.
func (b *backend) newClient(cfg *orgConfig) *cisco.Client {
	transport := b.transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	return cisco.NewClient(cfg.settings(), cisco.WithTransport(instrumentedTransport{next: transport, metrics: b.metrics}),
		cisco.WithTimeout(b.callTimeout), cisco.WithClock(b.now))
}

// keepClient caches a client built for a config that is now stored.
func (b *backend) keepClient(name string, c *cisco.Client) {
	b.clientMu.Lock()
	b.clients[name] = c
	b.clientMu.Unlock()
}

func (b *backend) resetClient(name string) {
	b.clientMu.Lock()
	delete(b.clients, name)
	b.clientMu.Unlock()
}

// ciscoCallTimeout is the longest one Cisco call may take.
func (b *backend) ciscoCallTimeout() time.Duration {
	if b.callTimeout > 0 {
		return b.callTimeout
	}
	return cisco.CallTimeout
}

// writeSafe reports whether this node may call Cisco and write: the active
// node of the primary cluster.
func (b *backend) writeSafe() bool {
	sys := b.System()
	return sys == nil || b.WriteSafeReplicationState()
}

const backendHelp = `
The cisco-s3 secrets engine keeps the Cisco-managed S3 log bucket key of
Cisco Umbrella and Cisco Secure Access organizations fresh.

Cisco locks an organization out of its own log bucket when the bucket's IAM
key is older than 90 days. This engine rotates the key through Cisco's
"Refresh S3 Bucket Key" API on request and on a schedule, and serves the
current key pair to log shippers and Vault Agent.

  config/<name>   Cisco API credentials and rotation settings of one
                  organization: write, read, delete.
  config/         List the configured organizations.
  rotate/<name>   Rotate the key now; with graceful=true, answer at once and
                  rotate after every consumer re-reads every 2 s.
  import/<name>   Store a key that was refreshed in Cisco's dashboard.
  verify/<name>   Check the served key against AWS STS now.
  creds/<name>    Read the current key pair.
  status          Every organization's key state and lockout, one line each.
  metrics         The mount's Prometheus metrics.

A <name> is ` + nameRule + `.
Writes refuse fields that their path does not know.
`

const operationPrefix = "cisco-s3"

// nameField is the <name> of the per-organization paths.
func nameField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Description: "Name of the organization: " + nameRule + ".", Required: true}
}

// forwardedWrite is a write operation that standbys and performance
// secondaries forward to the active node of the primary cluster, the one
// node that writes and calls Cisco. It refuses fields its path does not
// know.
func forwardedWrite(callback framework.OperationFunc, verb string) *framework.PathOperation {
	return &framework.PathOperation{
		Callback:                    refuseUnknownFields(callback),
		ForwardPerformanceStandby:   true,
		ForwardPerformanceSecondary: true,
		DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: verb},
	}
}
