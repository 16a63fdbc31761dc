package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// Istio's standard request metrics, with the labels Istio's telemetry gives them (the subset that
// means something here). Counted per RPC actually sent (reporter="source", after gRPC's retries:
// what the caller saw) and per RPC actually received (reporter="destination": every attempt).
// A "plain" caller stands for a client without a sidecar: it reports nothing at reporter="source",
// and the destination sees it as source_workload="unknown", source_workload_namespace="unknown" and
// no source_principal (no mTLS peer), as Istio's telemetry does.
//
// response_code is HTTP-like (the simulated services stand for HTTP services): a workload's error
// code is sent as the matching gRPC status (grpcCodeOf) and read back with httpCodeOf; a call that
// never reached a workload gets the code and response_flags Envoy would report (see classify).
var istioLabels = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_canonical_service", "source_canonical_revision",
	"destination_workload", "destination_workload_namespace", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"destination_canonical_service", "destination_canonical_revision",
	"response_code", "grpc_response_status", "response_flags", "request_protocol", "connection_security_policy",
}

// Istio's default buckets for istio_request_duration_milliseconds.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total", Help: "Requests, counted from the RPCs meshsim's callers sent and its workloads received.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_duration_milliseconds", Help: "Request duration in milliseconds.", Buckets: istioBuckets,
		}, istioLabels),
	}
	m.reg.MustRegister(m.requests, m.duration)
	return m
}

type requestLabels struct {
	reporter        string
	sourceWorkload  string
	sourceNamespace string
	dest            *podInfo // nil: no workload answered
	destService     string   // FQDN
	code            int
	grpcCode        codes.Code
	flags           string
}

func (m *metrics) record(l requestLabels, d time.Duration) {
	destWorkload, destNs, version, canonSvc, canonRev := "unknown", "unknown", "unknown", "unknown", "unknown"
	if l.dest != nil {
		destWorkload, destNs, version, canonSvc, canonRev = l.dest.Workload, l.dest.Namespace, l.dest.Version, l.dest.CanonSvc, l.dest.CanonRev
	}
	srcRev := "latest"
	if l.sourceWorkload == "unknown" {
		srcRev = "unknown" // no peer metadata: Istio knows nothing of the source
	}
	svcName, svcNs := serviceParts(l.destService)
	if destNs == "unknown" && svcNs != "unknown" {
		destNs = svcNs // Envoy knows the namespace of the service it was asked for
	}
	vals := []string{
		l.reporter,
		l.sourceWorkload, l.sourceNamespace, l.sourceWorkload, srcRev,
		destWorkload, destNs, version,
		l.destService, svcName, svcNs,
		canonSvc, canonRev,
		strconv.Itoa(l.code), strconv.Itoa(int(l.grpcCode)), l.flags, "http", "none",
	}
	m.requests.WithLabelValues(vals...).Inc()
	m.duration.WithLabelValues(vals...).Observe(float64(d) / float64(time.Millisecond))
}

// serviceParts: name and namespace of "name.ns.svc.cluster.local".
func serviceParts(fqdn string) (string, string) {
	parts := strings.SplitN(fqdn, ".", 3)
	if len(parts) >= 2 {
		return parts[0], parts[1]
	}
	return fqdn, "unknown"
}
