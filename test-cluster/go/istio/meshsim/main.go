// meshsim plays the data plane of the local test cluster's mesh, next to a real istiod:
//
//   - workloads: every Ready pod of a meshed namespace gets a small gRPC server on a 127.0.0.1
//     listener that answers with the pod's identity and version; its behaviour (error ratio,
//     latency, error code) comes from the pod's sim.istio-canary/* annotations or labels and
//     follows their changes. A deleted or not-Ready pod stops answering.
//   - callers: traffic generators whose RPCs go through gRPC's proxyless xDS client fed by istiod
//     (routes, weights, subsets and endpoints are chosen by Istio and gRPC, not here), or, for
//     comparison, a plain client that picks one of the Service's ready pods at random (what a
//     workload without a sidecar gets from kube-proxy). Bounded rates, set through an HTTP API.
//   - metrics: istio_requests_total and istio_request_duration_milliseconds with Istio's labels,
//     counted from the RPCs actually sent (reporter="source") and received (reporter="destination").
//   - analyze: Istio's own analyzers (those of `istioctl analyze`) against the live apiserver.
//
// Pod IPs are kwok's (10.x); they are never routed on this machine. The callers' dialer maps a
// pod's IP:port to the 127.0.0.1 listener that plays the pod and refuses every other address.
//
//	meshsim serve --kubeconfig K --listen 127.0.0.1:P --xds 127.0.0.1:XDS
//	meshsim analyze --kubeconfig K --namespace NS [--output json]
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveMain(os.Args[2:])
	case "analyze":
		var code int
		code, err = analyzeMain(os.Args[2:])
		if err == nil {
			os.Exit(code)
		}
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "meshsim: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshsim %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  meshsim serve --kubeconfig FILE --listen 127.0.0.1:PORT --xds 127.0.0.1:PORT
  meshsim analyze --kubeconfig FILE --namespace NS [--istio-namespace istio-system] [--output text|json]
`)
}
