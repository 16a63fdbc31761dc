package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/kube"
	istiolog "istio.io/istio/pkg/log"
)

// analyzeMain runs the analyzers `istioctl analyze` runs (analyzers.AllCombined) on one namespace
// of the live cluster, prints every message, and returns 1 when one of them is an error (like
// istioctl analyze's default --failure-threshold Error), 0 otherwise.
func analyzeMain(args []string) (int, error) {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	namespace := fs.String("namespace", "default", "namespace to analyze")
	istioNs := fs.String("istio-namespace", "istio-system", "Istio's namespace")
	output := fs.String("output", "text", "text or json")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	// istio's informers log every sync at info: only errors go to stderr here.
	for _, sc := range istiolog.Scopes() {
		sc.SetOutputLevel(istiolog.ErrorLevel)
	}
	if *output != "text" && *output != "json" {
		return 2, fmt.Errorf("--output %q must be text or json", *output)
	}
	if *kubeconfig == "" {
		return 2, fmt.Errorf("--kubeconfig is required")
	}
	client, err := kube.NewCLIClient(kube.BuildClientCmd(*kubeconfig, ""))
	if err != nil {
		return 2, fmt.Errorf("kubeconfig %s: %w", *kubeconfig, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if _, err := client.Kube().CoreV1().Namespaces().Get(ctx, *namespace, metav1.GetOptions{}); err != nil {
		return 2, fmt.Errorf("namespace %q: %w", *namespace, err)
	}

	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), resource.Namespace(*namespace), resource.Namespace(*istioNs), nil)
	sa.AddRunningKubeSourceWithRevision(kube.EnableCrdWatcher(client), "default", false)
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		close(done)
	}()
	result, err := sa.Analyze(done)
	if err != nil {
		return 2, err
	}
	if ctx.Err() != nil {
		return 2, fmt.Errorf("analysis did not finish within %v", *timeout)
	}
	msgs := result.Messages.SortedDedupedCopy()
	worst := 0
	type out struct {
		Code     string `json:"code"`
		Level    string `json:"level"`
		Origin   string `json:"origin,omitempty"`
		Message  string `json:"message"`
		Analyzer string `json:"-"`
	}
	list := []out{}
	for i := range msgs {
		m := &msgs[i]
		o := out{Code: m.Type.Code(), Level: m.Type.Level().String(), Message: fmt.Sprintf(m.Type.Template(), m.Parameters...)}
		if m.Resource != nil {
			o.Origin = m.Resource.Origin.FriendlyName()
		}
		list = append(list, o)
		if m.Type.Level() == diag.Error {
			worst = 1
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"namespace": *namespace, "messages": list, "executedAnalyzers": len(result.ExecutedAnalyzers)})
	} else {
		for _, o := range list {
			fmt.Printf("%s [%s] (%s) %s\n", o.Level, o.Code, o.Origin, o.Message)
		}
		if len(list) == 0 {
			fmt.Fprintf(os.Stderr, "✔ No validation issues found when analyzing namespace: %s.\n", *namespace)
		}
	}
	return worst, nil
}
