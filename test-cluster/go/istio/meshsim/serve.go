package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

const bootstrapEnv = "GRPC_XDS_BOOTSTRAP_CONFIG"

// xdsBootstrap: gRPC's bootstrap for a proxyless client of istiod at addr (plaintext), with the
// node identity and metadata istiod expects of a proxyless gRPC workload.
func xdsBootstrap(addr, nodeNamespace, istioVersion string) string {
	b := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      addr,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id": fmt.Sprintf("sidecar~127.0.0.1~meshsim.%s~%s.svc.cluster.local", nodeNamespace, nodeNamespace),
			"metadata": map[string]any{
				"GENERATOR": "grpc", "NAMESPACE": nodeNamespace, "CLUSTER_ID": "Kubernetes",
				"INSTANCE_IPS": "127.0.0.1", "ISTIO_VERSION": istioVersion, "WORKLOAD_NAME": "meshsim",
			},
			"locality": map[string]any{},
		},
	}
	out, _ := json.Marshal(b)
	return string(out)
}

func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	listen := fs.String("listen", "127.0.0.1:0", "address of the HTTP API and /metrics (loopback only)")
	xdsAddr := fs.String("xds", "", "istiod's plaintext xDS address (host:port on loopback)")
	nodeNs := fs.String("node-namespace", "default", "namespace of the callers' xDS node identity")
	istioVersion := fs.String("istio-version", "1.31.0", "ISTIO_VERSION sent in the node metadata")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// gRPC reads its xDS bootstrap from the environment when the process starts: set it and start
	// again (same PID), so that --xds is the only thing a caller has to say.
	if os.Getenv(bootstrapEnv) == "" {
		if *xdsAddr == "" {
			return errors.New("--xds (istiod's xDS address) is required, or set " + bootstrapEnv)
		}
		if err := loopbackOnly("--xds", *xdsAddr); err != nil {
			return err
		}
		os.Setenv(bootstrapEnv, xdsBootstrap(*xdsAddr, *nodeNs, *istioVersion))
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		return syscall.Exec(exe, os.Args, os.Environ())
	}
	if err := loopbackOnly("--listen", *listen); err != nil {
		return err
	}
	if *kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	log.SetFlags(0) // istio's logging (linked in for analyze) already stamps every line

	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", *kubeconfig, err)
	}
	rc.QPS, rc.Burst = 50, 100
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}

	m := newMetrics()
	w := newWorkloads(m)
	cs := newCallers(w, m)

	f := informers.NewSharedInformerFactory(kc, 0)
	podInf := f.Core().V1().Pods()
	nsInf := f.Core().V1().Namespaces()
	svcInf := f.Core().V1().Services()
	sliceInf := f.Discovery().V1().EndpointSlices()
	w.nsLister = nsInf.Lister()
	cs.svcs = svcInf.Lister()
	cs.slices = sliceInf.Lister()

	synced := make(chan struct{})
	onPod := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			w.sync(p.Namespace+"/"+p.Name, p)
		}
	}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onPod,
		UpdateFunc: func(_, n any) { onPod(n) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.sync(p.Namespace+"/"+p.Name, nil)
			}
		},
	})
	onNs := func(obj any) {
		select {
		case <-synced:
		default:
			return // the full resync after the first sync covers it
		}
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if n, ok := obj.(*corev1.Namespace); ok {
			w.resyncNamespace(n.Name, podInf.Lister())
		}
	}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onNs, UpdateFunc: func(_, n any) { onNs(n) }, DeleteFunc: onNs,
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api(cs, w, m, synced), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	log.Printf("HTTP API and /metrics on http://%s", lis.Addr())

	t0 := time.Now()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	close(synced)
	nss, _ := nsInf.Lister().List(labels.Everything())
	for _, n := range nss {
		w.resyncNamespace(n.Name, podInf.Lister())
	}
	log.Printf("ready in %v: %d workloads served", time.Since(t0).Round(time.Millisecond), len(w.snapshot()))

	<-ctx.Done()
	log.Printf("stopping")
	for _, c := range cs.list() {
		cs.remove(c.ns, c.name)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

func loopbackOnly(flagName, hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, hostport, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q must be a loopback address (127.0.0.0/8)", flagName, hostport)
	}
	return nil
}

// api: the HTTP API.
//
//	PUT    /callers/{ns}/{name}  {"service","port","rps","mode","timeoutMs","headers"}  start or replace a caller
//	DELETE /callers/{ns}/{name}                                            stop it
//	GET    /callers/{ns}/{name}?since=MS&until=MS&entries=1                totals, calls per workload and code
//	GET    /callers                                                        all callers' totals
//	GET    /workloads                                                      the pods meshsim plays
//	GET    /metrics, /healthz, /ready
func api(cs *callers, w *workloads, m *metrics, synced chan struct{}) http.Handler {
	mux := http.NewServeMux()
	reply := func(rw http.ResponseWriter, code int, v any) {
		rw.Header().Set("content-type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(v)
	}
	fail := func(rw http.ResponseWriter, code int, msg string) { reply(rw, code, map[string]string{"error": msg}) }
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte("ok")) })
	mux.HandleFunc("GET /ready", func(rw http.ResponseWriter, _ *http.Request) {
		select {
		case <-synced:
			_, _ = rw.Write([]byte("ok"))
		default:
			http.Error(rw, "informers not synced yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /workloads", func(rw http.ResponseWriter, _ *http.Request) {
		list := w.snapshot()
		sort.Slice(list, func(i, j int) bool { return list[i].Namespace+"/"+list[i].Pod < list[j].Namespace+"/"+list[j].Pod })
		reply(rw, 200, map[string]any{"workloads": list})
	})
	mux.HandleFunc("GET /callers", func(rw http.ResponseWriter, _ *http.Request) {
		out := []callerView{}
		for _, c := range cs.list() {
			v := c.view(0, 0, false)
			v.ByWorkload = nil
			out = append(out, v)
		}
		reply(rw, 200, map[string]any{"callers": out})
	})
	mux.HandleFunc("PUT /callers/{ns}/{name}", func(rw http.ResponseWriter, r *http.Request) {
		var cfg callerConfig
		dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			fail(rw, 400, "body: "+err.Error())
			return
		}
		c, err := cs.put(r.PathValue("ns"), r.PathValue("name"), cfg)
		if err != nil {
			fail(rw, 400, err.Error())
			return
		}
		reply(rw, 200, c.view(0, 0, false))
	})
	mux.HandleFunc("DELETE /callers/{ns}/{name}", func(rw http.ResponseWriter, r *http.Request) {
		if !cs.remove(r.PathValue("ns"), r.PathValue("name")) {
			fail(rw, 404, "no such caller")
			return
		}
		rw.WriteHeader(204)
	})
	mux.HandleFunc("GET /callers/{ns}/{name}", func(rw http.ResponseWriter, r *http.Request) {
		c := cs.get(r.PathValue("ns"), r.PathValue("name"))
		if c == nil {
			fail(rw, 404, "no such caller")
			return
		}
		q := r.URL.Query()
		since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
		until, _ := strconv.ParseInt(q.Get("until"), 10, 64)
		reply(rw, 200, c.view(since, until, q.Get("entries") == "1"))
	})
	return mux
}
