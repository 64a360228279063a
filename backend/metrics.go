package backend

// The mount's Prometheus metrics: per-organization gauges read from memory
// at each scrape, counters of rotations and Cisco calls, and the duration of
// those calls. One registry per mount, never the global one: one plugin
// process serves many mounts.

import (
	"bytes"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"vault-plugin-secrets-cisco-s3/internal/bucketkey"
	"vault-plugin-secrets-cisco-s3/internal/stscheck"
)

// metricsContentType is Prometheus's text exposition format.
var metricsContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

type mountMetrics struct {
	registry  *prometheus.Registry
	rotations *prometheus.CounterVec
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	keyChecks *prometheus.CounterVec
}

func newMountMetrics() *mountMetrics {
	m := &mountMetrics{
		registry: prometheus.NewRegistry(),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cisco_s3_rotations_total",
			Help: "Rotation attempts by organization, trigger (" + strings.Join(bucketkey.Triggers, ", ") + ") and result (" + joinOutcomes() + ").",
		}, []string{"name", "trigger", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cisco_s3_cisco_requests_total",
			Help: "Calls to Cisco by endpoint (token, rotate_key) and HTTP status code (error: no answer).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cisco_s3_cisco_request_duration_seconds",
			Help:    "Duration of calls to Cisco by endpoint.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
	}
	m.keyChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cisco_s3_key_checks_total",
		Help: "Checks of keys against AWS STS by trigger (" + strings.Join(checkTriggers, ", ") + ") and outcome (valid, invalid, unknown).",
	}, []string{"trigger", "outcome"})
	m.registry.MustRegister(m.rotations, m.requests, m.duration, m.keyChecks)
	return m
}

func joinOutcomes() string {
	names := make([]string, len(bucketkey.Outcomes))
	for i, o := range bucketkey.Outcomes {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// render encodes every metric in the text exposition format. The
// per-organization gauges are built as metric families directly: with
// 10,000 organizations, going through const metrics and the registry's
// consistency checks costs several times more.
func (m *mountMetrics) render(rows []orgStatus, unreadable int) ([]byte, error) {
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	families = append(families, fleetFamilies(rows, unreadable)...)
	sort.Slice(families, func(i, j int) bool { return families[i].GetName() < families[j].GetName() })
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// forget drops a deleted organization's counters.
func (m *mountMetrics) forget(name string) {
	m.rotations.DeletePartialMatch(prometheus.Labels{"name": name})
}

// The per-organization gauges, labelled name.
const (
	keyExpiryMetric     = "cisco_s3_key_expiry_timestamp_seconds"
	keyCreationMetric   = "cisco_s3_key_creation_timestamp_seconds"
	nextRotationMetric  = "cisco_s3_next_rotation_timestamp_seconds"
	keyStaleMetric      = "cisco_s3_key_stale"
	failuresMetric      = "cisco_s3_rotation_consecutive_failures"
	lastSuccessMetric   = "cisco_s3_last_successful_rotation_timestamp_seconds"
	unreadableMetric    = "cisco_s3_unreadable_entries"
	verifiedMetric      = "cisco_s3_key_verified_timestamp_seconds"
	verifyFailedMetric  = "cisco_s3_key_verify_failed"
	keyRejectedMetric   = "cisco_s3_key_rejected"
	lastCheckedMetric   = "cisco_s3_key_last_checked_timestamp_seconds"
	checkIntervalMetric = "cisco_s3_key_check_interval_seconds"
	keyMissingMetric    = "cisco_s3_key_missing"
)

var fleetHelp = map[string]string{
	keyExpiryMetric:     "When Cisco locks the served key out: its start plus 90 days.",
	keyCreationMetric:   "The start of the served key's 90 days.",
	nextRotationMetric:  "When the scheduler rotates next; absent when automated rotation is off or no key is stored.",
	keyStaleMetric:      "1 when a rotation's outcome is unknown and the served key may be dead.",
	failuresMetric:      "Failed rotation attempts since the last success.",
	lastSuccessMetric:   "When Vault last stored a key, by rotation or import.",
	unreadableMetric:    "Stored organizations that cannot be decoded.",
	verifiedMetric:      "When AWS STS last accepted the served key; absent until a check passes.",
	verifyFailedMetric:  "1 when the last check of the served key against AWS STS did not pass: rejected, or no answer.",
	keyRejectedMetric:   "1 when AWS STS rejected the served key at its last check, or rejects it since a minute or more: consumers hold a key that does not work.",
	lastCheckedMetric:   "When AWS STS last answered a check of the served key; absent before any answer.",
	checkIntervalMetric: "How often the served key is checked on a schedule (key_check_interval); absent when the scheduled checks are off.",
	keyMissingMetric:    "1 when the organization is configured but no key is stored: nothing is served yet.",
}

// fleetFamilies turns every organization's standing into gauge families.
func fleetFamilies(rows []orgStatus, unreadable int) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	family := func(name string) *dto.MetricFamily {
		f := byName[name]
		if f == nil {
			f = &dto.MetricFamily{Name: proto.String(name), Help: proto.String(fleetHelp[name]),
				Type: dto.MetricType_GAUGE.Enum(), Metric: make([]*dto.Metric, 0, len(rows))}
			byName[name] = f
		}
		return f
	}
	labelName := proto.String("name")
	for _, st := range rows {
		labels := []*dto.LabelPair{{Name: labelName, Value: proto.String(st.name)}}
		gauge := func(metric string, v float64) {
			f := family(metric)
			f.Metric = append(f.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: proto.Float64(v)}})
		}
		if !st.expiresAt.IsZero() {
			gauge(keyExpiryMetric, unixSeconds(st.expiresAt))
			gauge(keyCreationMetric, unixSeconds(st.createdAt))
		}
		if !st.nextRotation.IsZero() {
			gauge(nextRotationMetric, unixSeconds(st.nextRotation))
		}
		stale := 0.0
		if st.keyState == "stale" {
			stale = 1
		}
		gauge(keyStaleMetric, stale)
		gauge(failuresMetric, float64(st.consecutiveFailures))
		if !st.lastRotation.IsZero() {
			gauge(lastSuccessMetric, unixSeconds(st.lastRotation))
		}
		if !st.verifiedAt.IsZero() {
			gauge(verifiedMetric, unixSeconds(st.verifiedAt))
		}
		verifyFailed := 0.0
		if st.verifyError != "" {
			verifyFailed = 1
		}
		gauge(verifyFailedMetric, verifyFailed)
		rejected := 0.0
		if st.rejected || st.checkResult == stscheck.Invalid {
			rejected = 1
		}
		gauge(keyRejectedMetric, rejected)
		if !st.checkedAt.IsZero() {
			gauge(lastCheckedMetric, unixSeconds(st.checkedAt))
		}
		if st.checkInterval > 0 && st.hasKey {
			gauge(checkIntervalMetric, st.checkInterval.Seconds())
		}
		missing := 0.0
		if !st.hasKey {
			missing = 1
		}
		gauge(keyMissingMetric, missing)
	}
	family(unreadableMetric).Metric = append(family(unreadableMetric).Metric,
		&dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(float64(unreadable))}})
	families := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		families = append(families, f)
	}
	return families
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }

// instrumentedTransport counts and times every call to Cisco, so that the
// Cisco client itself needs to know nothing of metrics.
type instrumentedTransport struct {
	next    http.RoundTripper
	metrics *mountMetrics
}

func (t instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := "token"
	if strings.HasSuffix(req.URL.Path, "/iam/rotateKey") {
		endpoint = "rotate_key"
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.metrics.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.metrics.requests.WithLabelValues(endpoint, code).Inc()
	return resp, err
}
