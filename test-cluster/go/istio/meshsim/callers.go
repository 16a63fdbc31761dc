package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// Bounds that keep meshsim from starving a 2-core machine.
const (
	maxRPSPerCaller = 500
	maxRPSTotal     = 1000
	maxCallers      = 32
	maxInflight     = 256
	maxLogEntries   = 200_000
	maxErrorKinds   = 20
)

type callerConfig struct {
	Service   string  `json:"service"`             // Service name in the caller's namespace
	Port      int     `json:"port,omitempty"`      // Service port (default 80)
	RPS       float64 `json:"rps"`                 // requests per second (0 < rps <= 500)
	Mode      string  `json:"mode,omitempty"`      // "xds" (default): proxyless gRPC fed by istiod; "plain": a random ready pod
	TimeoutMs int     `json:"timeoutMs,omitempty"` // per-call deadline (default 2000)
	// Request headers (gRPC metadata) sent with every call, e.g. for header- or cookie-matched routes.
	Headers map[string]string `json:"headers,omitempty"`
}

// entry is one call as the caller saw it.
type entry struct {
	T        int64   `json:"t"`  // start, unix ms
	Ms       float64 `json:"ms"` // duration
	Code     int     `json:"code"`
	Grpc     int     `json:"grpc"`
	Flags    string  `json:"flags"`
	Pod      string  `json:"pod,omitempty"`
	Workload string  `json:"workload,omitempty"`
	Version  string  `json:"version,omitempty"`
}

type caller struct {
	ns, name string
	cfg      callerConfig
	host     string // FQDN of the service
	started  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	conn   *grpc.ClientConn // xds mode

	plainMu    sync.Mutex
	plainConns map[string]*grpc.ClientConn // pod IP:port -> conn (plain mode)

	inflight atomic.Int64
	dropped  atomic.Int64

	mu     sync.Mutex
	log    []entry // ring
	next   int
	full   bool
	sent   int64
	failed int64
	errors map[string]int64 // message -> count (first maxErrorKinds kinds)
}

type callers struct {
	mu     sync.Mutex
	byKey  map[string]*caller
	w      *workloads
	m      *metrics
	svcs   corelisters.ServiceLister
	slices discoverylisters.EndpointSliceLister
}

func newCallers(w *workloads, m *metrics) *callers {
	return &callers{byKey: map[string]*caller{}, w: w, m: m}
}

func (cs *callers) validate(ns, name string, cfg *callerConfig) error {
	if cfg.Service == "" {
		return fmt.Errorf("service is required (the name of a Service in namespace %q)", ns)
	}
	if cfg.Port == 0 {
		cfg.Port = 80
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return fmt.Errorf("port %d is not a port number", cfg.Port)
	}
	if cfg.Mode == "" {
		cfg.Mode = "xds"
	}
	if cfg.Mode != "xds" && cfg.Mode != "plain" {
		return fmt.Errorf("mode %q must be \"xds\" or \"plain\"", cfg.Mode)
	}
	if !(cfg.RPS > 0 && cfg.RPS <= maxRPSPerCaller) {
		return fmt.Errorf("rps %v must be > 0 and <= %d", cfg.RPS, maxRPSPerCaller)
	}
	if cfg.TimeoutMs == 0 {
		cfg.TimeoutMs = 2000
	}
	if cfg.TimeoutMs < 10 || cfg.TimeoutMs > 60000 {
		return fmt.Errorf("timeoutMs %d must be between 10 and 60000", cfg.TimeoutMs)
	}
	total := cfg.RPS
	for k, c := range cs.byKey {
		if k != ns+"/"+name {
			total += c.cfg.RPS
		}
	}
	if total > maxRPSTotal {
		return fmt.Errorf("all callers together would send %v rps, more than %d", total, maxRPSTotal)
	}
	if _, ok := cs.byKey[ns+"/"+name]; !ok && len(cs.byKey) >= maxCallers {
		return fmt.Errorf("already %d callers", maxCallers)
	}
	return nil
}

// put starts or replaces caller ns/name (a replaced caller starts afresh: new counters, new channel).
func (cs *callers) put(ns, name string, cfg callerConfig) (*caller, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if err := cs.validate(ns, name, &cfg); err != nil {
		return nil, err
	}
	key := ns + "/" + name
	if old := cs.byKey[key]; old != nil {
		old.stop()
		delete(cs.byKey, key)
	}
	c := &caller{
		ns: ns, name: name, cfg: cfg, host: cfg.Service + "." + ns + ".svc.cluster.local", started: time.Now(),
		done: make(chan struct{}), plainConns: map[string]*grpc.ClientConn{}, errors: map[string]int64{},
		log: make([]entry, 0, 1024),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Mode == "xds" {
		conn, err := grpc.NewClient(fmt.Sprintf("xds:///%s:%d", c.host, cfg.Port),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(cs.w.dialContext))
		if err != nil {
			c.cancel()
			return nil, fmt.Errorf("xds channel: %w", err)
		}
		c.conn = conn
		conn.Connect()
	}
	cs.byKey[key] = c
	go cs.run(c)
	return c, nil
}

func (cs *callers) remove(ns, name string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.byKey[ns+"/"+name]
	if c == nil {
		return false
	}
	c.stop()
	delete(cs.byKey, ns+"/"+name)
	return true
}

func (cs *callers) get(ns, name string) *caller {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.byKey[ns+"/"+name]
}

func (cs *callers) list() []*caller {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*caller, 0, len(cs.byKey))
	for _, c := range cs.byKey {
		out = append(out, c)
	}
	return out
}

func (c *caller) stop() {
	c.cancel()
	<-c.done
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.plainMu.Lock()
	for _, pc := range c.plainConns {
		_ = pc.Close()
	}
	c.plainMu.Unlock()
}

// run sends calls at the configured rate until stopped; at most maxInflight at once (the rest are
// counted as dropped, not queued).
func (cs *callers) run(c *caller) {
	defer close(c.done)
	t := time.NewTicker(time.Duration(float64(time.Second) / c.cfg.RPS))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			if c.inflight.Load() >= maxInflight {
				c.dropped.Add(1)
				continue
			}
			c.inflight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.inflight.Add(-1)
				cs.once(c)
			}()
		}
	}
}

func (cs *callers) once(c *caller) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, time.Duration(c.cfg.TimeoutMs)*time.Millisecond)
	defer cancel()
	if c.cfg.Mode == "xds" {
		// A sidecar's peer-metadata exchange tells the destination who called. A client without a
		// sidecar ("plain") sends none: the destination reports it as source_workload="unknown".
		ctx = metadata.AppendToOutgoingContext(ctx, mdSource, c.name, mdSourceNs, c.ns)
	}
	for k, v := range c.cfg.Headers {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	var trailer metadata.MD
	out := new(wrapperspb.BytesValue)
	var err error
	if c.cfg.Mode == "xds" {
		err = c.conn.Invoke(ctx, callMethod, wrapperspb.Bytes(nil), out, grpc.Trailer(&trailer))
	} else {
		var conn *grpc.ClientConn
		conn, err = cs.plainConn(c)
		if err == nil {
			err = conn.Invoke(ctx, callMethod, wrapperspb.Bytes(nil), out, grpc.Trailer(&trailer))
		}
	}
	d := time.Since(start)
	if c.ctx.Err() != nil {
		return // the caller was stopped: this call is not an outcome
	}
	st := status.Convert(err)
	var dest *podInfo
	if v := trailer.Get(mdPod); len(v) > 0 {
		dest = &podInfo{Pod: v[0], Namespace: first(trailer, mdNamespace), Workload: first(trailer, mdWorkload),
			Version: first(trailer, mdVersion), CanonSvc: first(trailer, mdCanonSvc), CanonRev: first(trailer, mdCanonRev)}
	}
	code, flags := httpCodeOf(st.Code()), "-"
	if err != nil && dest == nil {
		code, flags = classify(st)
	}
	if c.cfg.Mode == "xds" {
		// Only a sidecar reports at reporter="source": a client without one reports nothing.
		cs.m.record(requestLabels{
			reporter: "source", sourceWorkload: c.name, sourceNamespace: c.ns, dest: dest, destService: c.host,
			code: code, grpcCode: st.Code(), flags: flags,
		}, d)
	}
	e := entry{T: start.UnixMilli(), Ms: float64(d.Microseconds()) / 1000, Code: code, Grpc: int(st.Code()), Flags: flags}
	if dest != nil {
		e.Pod, e.Workload, e.Version = dest.Pod, dest.Workload, dest.Version
	}
	c.mu.Lock()
	c.sent++
	if code >= 500 || err != nil {
		c.failed++
		msg := st.Message()
		if len(msg) > 300 {
			msg = msg[:300]
		}
		msg = st.Code().String() + ": " + msg
		if _, ok := c.errors[msg]; ok || len(c.errors) < maxErrorKinds {
			c.errors[msg]++
		}
	}
	if len(c.log) < maxLogEntries {
		c.log = append(c.log, e)
	} else {
		c.log[c.next] = e
		c.next = (c.next + 1) % maxLogEntries
		c.full = true
	}
	c.mu.Unlock()
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// classify: response_code and response_flags for a call that no workload answered, as Envoy
// would report it. gRPC's xDS client says what went wrong in the status message.
func classify(st *status.Status) (int, string) {
	msg := strings.ToLower(st.Message())
	switch {
	case st.Code() == codes.DeadlineExceeded:
		return 504, "UT" // upstream request timeout
	case strings.Contains(msg, "no matching route") || strings.Contains(msg, "no route"):
		return 404, "NR" // no route configured
	case strings.Contains(msg, "unknown cluster") ||
		strings.Contains(msg, "cluster") && (strings.Contains(msg, "removed") || strings.Contains(msg, "not found") || strings.Contains(msg, "does not exist")):
		return 503, "NC" // upstream cluster not found
	case strings.Contains(msg, "no targets to pick from") || strings.Contains(msg, "no children to pick from") ||
		strings.Contains(msg, "zero addresses") || strings.Contains(msg, "no healthy") || strings.Contains(msg, "empty address list") ||
		strings.Contains(msg, "no endpoints") || strings.Contains(msg, "no ready pod"):
		return 503, "UH" // no healthy upstream
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection error") || strings.Contains(msg, "connection closed") ||
		strings.Contains(msg, "transport is closing") || strings.Contains(msg, "error reading from server"):
		return 503, "UF" // upstream connection failure
	case st.Code() == codes.Canceled:
		return 499, "DC"
	}
	return httpCodeOf(st.Code()), "-"
}

// plainConn: a connection to one ready endpoint of the Service, picked at random per call (what a
// client without a sidecar gets through the Service's cluster IP and kube-proxy).
func (cs *callers) plainConn(c *caller) (*grpc.ClientConn, error) {
	addrs, err := cs.readyEndpoints(c.ns, c.cfg.Service, c.cfg.Port)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, status.Errorf(codes.Unavailable, "no ready pod behind service %s/%s port %d", c.ns, c.cfg.Service, c.cfg.Port)
	}
	addr := addrs[rand.IntN(len(addrs))]
	c.plainMu.Lock()
	defer c.plainMu.Unlock()
	if conn := c.plainConns[addr]; conn != nil {
		return conn, nil
	}
	if len(c.plainConns) > 64 { // pod IPs come and go: forget the old ones
		for k, old := range c.plainConns {
			_ = old.Close()
			delete(c.plainConns, k)
		}
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(cs.w.dialContext),
		grpc.WithAuthority(net.JoinHostPort(c.host, strconv.Itoa(c.cfg.Port))))
	if err != nil {
		return nil, err
	}
	c.plainConns[addr] = conn
	return conn, nil
}

// readyEndpoints: "ip:targetPort" of the Service's ready endpoints (from its EndpointSlices).
func (cs *callers) readyEndpoints(ns, svcName string, port int) ([]string, error) {
	svc, err := cs.svcs.Services(ns).Get(svcName)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "service %s/%s: %v", ns, svcName, err)
	}
	portName := ""
	found := false
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return nil, status.Errorf(codes.Unavailable, "service %s/%s has no port %d", ns, svcName, port)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svcName})
	slices, err := cs.slices.EndpointSlices(ns).List(sel)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range slices {
		var target int32 = -1
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == portName && p.Port != nil {
				target = *p.Port
			}
		}
		if target < 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(target))))
			}
		}
	}
	return out, nil
}

// callerView is what GET /callers/{ns}/{name} returns: totals, and the calls since `since`.
type callerView struct {
	Namespace  string                    `json:"namespace"`
	Name       string                    `json:"name"`
	Config     callerConfig              `json:"config"`
	Target     string                    `json:"target"`
	Started    int64                     `json:"started"`
	Sent       int64                     `json:"sent"`
	Failed     int64                     `json:"failed"`
	Dropped    int64                     `json:"dropped"`
	Inflight   int64                     `json:"inflight"`
	Errors     map[string]int64          `json:"errors"`
	Since      int64                     `json:"since"`
	Until      int64                     `json:"until"`
	ByWorkload map[string]map[string]int `json:"byWorkload"` // workload ("" = none) -> response_code -> calls since `since`
	Entries    []entry                   `json:"entries,omitempty"`
}

func (c *caller) view(since, until int64, withEntries bool) callerView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := callerView{
		Namespace: c.ns, Name: c.name, Config: c.cfg, Started: c.started.UnixMilli(),
		Sent: c.sent, Failed: c.failed, Dropped: c.dropped.Load(), Inflight: c.inflight.Load(),
		Errors: map[string]int64{}, Since: since, Until: until, ByWorkload: map[string]map[string]int{},
	}
	if c.cfg.Mode == "xds" {
		v.Target = fmt.Sprintf("xds:///%s:%d", c.host, c.cfg.Port)
	} else {
		v.Target = fmt.Sprintf("plain %s:%d", c.host, c.cfg.Port)
	}
	for k, n := range c.errors {
		v.Errors[k] = n
	}
	visit := func(e entry) {
		if e.T < since || (until > 0 && e.T >= until) {
			return
		}
		m := v.ByWorkload[e.Workload]
		if m == nil {
			m = map[string]int{}
			v.ByWorkload[e.Workload] = m
		}
		m[strconv.Itoa(e.Code)]++
		if withEntries {
			v.Entries = append(v.Entries, e)
		}
	}
	if c.full {
		for _, e := range c.log[c.next:] {
			visit(e)
		}
		for _, e := range c.log[:c.next] {
			visit(e)
		}
	} else {
		for _, e := range c.log {
			visit(e)
		}
	}
	return v
}
