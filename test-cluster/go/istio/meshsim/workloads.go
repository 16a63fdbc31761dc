package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Pod annotations (or labels) that set how a simulated workload answers. Annotations win.
const (
	annErrorRatio = "sim.istio-canary/error-ratio" // fraction of calls answered with an error, 0..1
	annErrorCode  = "sim.istio-canary/error-code"  // HTTP-like code of those errors (default 500)
	annLatency    = "sim.istio-canary/latency"     // Go duration added to every call ("250ms")
	maxLatency    = 30 * time.Second
)

// The one RPC every simulated workload serves. Request and answer are JSON in a BytesValue, so
// no generated code is needed.
const callMethod = "/meshsim.Workload/Call"

// Trailer keys through which a workload tells the caller who answered (Istio's peer metadata
// exchange does the same for the source reporter's destination_* labels).
const (
	mdPod       = "x-meshsim-pod"
	mdNamespace = "x-meshsim-namespace"
	mdWorkload  = "x-meshsim-workload"
	mdVersion   = "x-meshsim-version"
	mdCanonSvc  = "x-meshsim-canonical-service"
	mdCanonRev  = "x-meshsim-canonical-revision"
	mdSource    = "x-meshsim-source-workload" // request header: the caller's name
	mdSourceNs  = "x-meshsim-source-namespace"
)

type behaviour struct {
	ErrorRatio float64       `json:"errorRatio"`
	ErrorCode  int           `json:"errorCode"`
	Latency    time.Duration `json:"latencyNs"`
	Problem    string        `json:"problem,omitempty"` // an annotation that could not be read
}

// podInfo is the identity a workload answers with and Istio's metric labels derive from.
type podInfo struct {
	Pod        string            `json:"pod"`
	Namespace  string            `json:"namespace"`
	Workload   string            `json:"workload"`
	Version    string            `json:"version"`
	CanonSvc   string            `json:"canonicalService"`
	CanonRev   string            `json:"canonicalRevision"`
	Labels     map[string]string `json:"labels"`
	IP         string            `json:"ip"`
	Ports      []int32           `json:"ports"`
	ListenAddr string            `json:"listen"`
}

type podSim struct {
	key   string
	ip    string
	ports []int32
	info  atomic.Pointer[podInfo]
	beh   atomic.Pointer[behaviour]
	lis   net.Listener
	srv   *grpc.Server
	m     *metrics
}

// workloads keeps one podSim per serving pod and the dial map (pod IP:port -> 127.0.0.1 listener).
type workloads struct {
	mu       sync.Mutex
	pods     map[string]*podSim // ns/name
	dialMu   sync.RWMutex
	dial     map[string]string // "ip:port" or "ip:*" -> "127.0.0.1:N"
	nsLister corelisters.NamespaceLister
	m        *metrics
	maxPods  int
}

func newWorkloads(m *metrics) *workloads {
	return &workloads{pods: map[string]*podSim{}, dial: map[string]string{}, m: m, maxPods: 2000}
}

// meshed: the namespace asks for injection (istio-injection=enabled or an istio.io/rev label) and
// the pod does not opt out (sidecar.istio.io/inject: "false").
func (w *workloads) meshed(pod *corev1.Pod) bool {
	if v, ok := pod.Annotations["sidecar.istio.io/inject"]; ok && v == "false" {
		return false
	}
	if v, ok := pod.Labels["sidecar.istio.io/inject"]; ok && v == "false" {
		return false
	}
	if w.nsLister == nil {
		return false
	}
	ns, err := w.nsLister.Get(pod.Namespace)
	if err != nil {
		return false
	}
	return ns.Labels["istio-injection"] == "enabled" || ns.Labels["istio.io/rev"] != ""
}

func podReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sync brings the simulated workload of pod ns/name in line with the pod (nil: deleted).
func (w *workloads) sync(key string, pod *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.pods[key]
	serve := pod != nil && podReady(pod) && w.meshed(pod)
	if cur != nil && (!serve || cur.ip != pod.Status.PodIP || !samePorts(cur.ports, tcpPorts(pod))) {
		w.stopLocked(cur)
		cur = nil
	}
	if !serve {
		return
	}
	if cur == nil {
		if len(w.pods) >= w.maxPods {
			log.Printf("not serving %s: already %d pods simulated", key, len(w.pods))
			return
		}
		p, err := w.startLocked(key, pod)
		if err != nil {
			log.Printf("cannot serve %s: %v", key, err)
			return
		}
		cur = p
	}
	cur.update(pod)
}

// resyncNamespace re-evaluates every pod of ns (its labels decide whether it is meshed).
func (w *workloads) resyncNamespace(ns string, pods corelisters.PodLister) {
	list, err := pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range list {
		k := p.Namespace + "/" + p.Name
		seen[k] = true
		w.sync(k, p)
	}
	w.mu.Lock()
	var gone []string
	for k := range w.pods {
		if strings.HasPrefix(k, ns+"/") && !seen[k] {
			gone = append(gone, k)
		}
	}
	w.mu.Unlock()
	for _, k := range gone {
		w.sync(k, nil)
	}
}

func tcpPorts(pod *corev1.Pod) []int32 {
	var out []int32
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				out = append(out, p.ContainerPort)
			}
		}
	}
	return out
}

func samePorts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (w *workloads) startLocked(key string, pod *corev1.Pod) (*podSim, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &podSim{key: key, ip: pod.Status.PodIP, ports: tcpPorts(pod), lis: lis, m: w.m}
	p.srv = grpc.NewServer(grpc.UnknownServiceHandler(nil))
	p.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "meshsim.Workload",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Call",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				return p.call(ctx)
			},
		}},
	}, struct{}{})
	go func() { _ = p.srv.Serve(lis) }()
	w.pods[key] = p
	addr := lis.Addr().String()
	w.dialMu.Lock()
	if len(p.ports) == 0 {
		w.dial[p.ip+":*"] = addr
	}
	for _, port := range p.ports {
		w.dial[net.JoinHostPort(p.ip, strconv.Itoa(int(port)))] = addr
	}
	w.dialMu.Unlock()
	log.Printf("serving %s (pod IP %s, ports %v) on %s", key, p.ip, p.ports, addr)
	return p, nil
}

func (w *workloads) stopLocked(p *podSim) {
	delete(w.pods, p.key)
	addr := p.lis.Addr().String()
	w.dialMu.Lock()
	for k, v := range w.dial {
		if v == addr {
			delete(w.dial, k)
		}
	}
	w.dialMu.Unlock()
	// A pod that is gone answers nothing: running calls end with it (no grace period is simulated).
	p.srv.Stop()
	log.Printf("stopped %s (%s)", p.key, addr)
}

// lookup: the 127.0.0.1 listener that plays pod address "ip:port", if any.
func (w *workloads) lookup(hostport string) (string, bool) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", false
	}
	w.dialMu.RLock()
	defer w.dialMu.RUnlock()
	if a, ok := w.dial[hostport]; ok {
		return a, true
	}
	a, ok := w.dial[host+":*"]
	return a, ok
}

// dialContext is the only way the callers connect: pod IPs go to the listener that plays the pod,
// loopback addresses are dialled as they are, and anything else is refused without a packet sent.
func (w *workloads) dialContext(ctx context.Context, hostport string) (net.Conn, error) {
	target := hostport
	if a, ok := w.lookup(hostport); ok {
		target = a
	} else {
		host, _, err := net.SplitHostPort(hostport)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("meshsim: connect %s: connection refused (no Ready pod plays this address)", hostport)
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func (w *workloads) snapshot() []podInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]podInfo, 0, len(w.pods))
	for _, p := range w.pods {
		out = append(out, *p.info.Load())
	}
	return out
}

// update refreshes identity and behaviour from the pod (labels and annotations may change at run time).
func (p *podSim) update(pod *corev1.Pod) {
	info := &podInfo{
		Pod: pod.Name, Namespace: pod.Namespace, Workload: workloadName(pod), Version: versionOf(pod.Labels),
		CanonSvc: canonicalService(pod), CanonRev: canonicalRevision(pod.Labels), Labels: pod.Labels,
		IP: p.ip, Ports: p.ports, ListenAddr: p.lis.Addr().String(),
	}
	p.info.Store(info)
	b := &behaviour{ErrorCode: 500}
	get := func(k string) (string, bool) {
		if v, ok := pod.Annotations[k]; ok {
			return v, true
		}
		v, ok := pod.Labels[k]
		return v, ok
	}
	var problems []string
	if v, ok := get(annErrorRatio); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			problems = append(problems, fmt.Sprintf("%s=%q is not a number between 0 and 1", annErrorRatio, v))
		} else {
			b.ErrorRatio = f
		}
	}
	if v, ok := get(annErrorCode); ok {
		c, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || c < 400 || c > 599 {
			problems = append(problems, fmt.Sprintf("%s=%q is not an HTTP error code (400..599)", annErrorCode, v))
		} else {
			b.ErrorCode = c
		}
	}
	if v, ok := get(annLatency); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 || d > maxLatency {
			problems = append(problems, fmt.Sprintf("%s=%q is not a Go duration between 0s and 30s", annLatency, v))
		} else {
			b.Latency = d
		}
	}
	b.Problem = strings.Join(problems, "; ")
	if old := p.beh.Load(); old == nil || *old != *b {
		if b.Problem != "" {
			log.Printf("%s: %s", p.key, b.Problem)
		}
		p.beh.Store(b)
	}
}

// call answers one RPC as the pod would, and counts it as Istio's destination reporter does.
func (p *podSim) call(ctx context.Context) (any, error) {
	start := time.Now()
	info := p.info.Load()
	b := p.beh.Load()
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs(mdPod, info.Pod, mdNamespace, info.Namespace, mdWorkload, info.Workload,
		mdVersion, info.Version, mdCanonSvc, info.CanonSvc, mdCanonRev, info.CanonRev))
	httpCode := 200
	var err error
	if b.Latency > 0 {
		t := time.NewTimer(b.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			httpCode = 499 // the caller gave up (Envoy: downstream disconnect)
			err = status.FromContextError(ctx.Err()).Err()
		}
	}
	if err == nil && b.ErrorRatio > 0 && rand.Float64() < b.ErrorRatio {
		httpCode = b.ErrorCode
		err = status.Errorf(grpcCodeOf(httpCode), "simulated error %d from %s", httpCode, info.Pod)
	}
	authority := first(":authority")
	svcHost := authority
	if h, _, e := net.SplitHostPort(authority); e == nil {
		svcHost = h
	}
	flags := "-"
	if httpCode == 499 {
		flags = "DC"
	}
	p.m.record(requestLabels{
		reporter: "destination", sourceWorkload: orUnknown(first(mdSource)), sourceNamespace: orUnknown(first(mdSourceNs)),
		dest: info, destService: orUnknown(svcHost), code: httpCode, grpcCode: status.Code(err), flags: flags,
	}, time.Since(start))
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"pod": info.Pod, "namespace": info.Namespace, "workload": info.Workload, "version": info.Version})
	return wrapperspb.Bytes(body), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// workloadName follows Istio: a ReplicaSet's pods belong to its Deployment (the ReplicaSet name
// less its pod-template-hash), other owners name the workload, a bare pod is its own workload.
func workloadName(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := pod.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(o.Name, "-"+h) {
				return strings.TrimSuffix(o.Name, "-"+h)
			}
		}
		return o.Name
	}
	return pod.Name
}

// versionOf follows Istio's destination_version: the `version` label, else
// app.kubernetes.io/version, else "unknown".
func versionOf(l map[string]string) string {
	if v := l["version"]; v != "" {
		return v
	}
	if v := l["app.kubernetes.io/version"]; v != "" {
		return v
	}
	return "unknown"
}

func canonicalService(pod *corev1.Pod) string {
	for _, k := range []string{"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"} {
		if v := pod.Labels[k]; v != "" {
			return v
		}
	}
	return workloadName(pod)
}

func canonicalRevision(l map[string]string) string {
	for _, k := range []string{"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"} {
		if v := l[k]; v != "" {
			return v
		}
	}
	return "latest"
}

// grpcCodeOf: the gRPC status a simulated service returns for an HTTP-like error code: the
// inverse of httpCodeOf, so 500, 503, 504, 429, 501, 404, 409, 403, 401 and 400 come back as
// they were set; other 5xx are answered as Internal (500), other 4xx as FailedPrecondition (400).
func grpcCodeOf(httpCode int) codes.Code {
	switch httpCode {
	case 400:
		return codes.InvalidArgument
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.NotFound
	case 409:
		return codes.Aborted
	case 429:
		return codes.ResourceExhausted
	case 501:
		return codes.Unimplemented
	case 503:
		return codes.Unavailable
	case 504:
		return codes.DeadlineExceeded
	}
	if httpCode >= 500 {
		return codes.Internal
	}
	return codes.FailedPrecondition
}

// httpCodeOf: the HTTP-like response_code of a gRPC status (the table grpc-gateway uses).
func httpCodeOf(c codes.Code) int {
	switch c {
	case codes.OK:
		return 200
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return 400
	case codes.DeadlineExceeded:
		return 504
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.PermissionDenied:
		return 403
	case codes.Unauthenticated:
		return 401
	case codes.ResourceExhausted:
		return 429
	case codes.Unimplemented:
		return 501
	case codes.Unavailable:
		return 503
	default: // Unknown, Internal, DataLoss
		return 500
	}
}
