// Package configs_test checks that the deployment files under configs/ agree with each other
// and with onair: the Kubernetes manifests, the Dockerfile and the Grafana dashboard against
// the documented config (onair.yaml) and the metrics onair exports. Nothing here needs a
// cluster or a Docker engine: the files are parsed and compared.
package configs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	defaultsFile   = "onair.yaml"
	kubernetesDir  = "kubernetes"
	dockerfile     = "docker/Dockerfile"
	dockerignore   = "docker/Dockerfile.dockerignore"
	dashboardFile  = "grafana/onair.json"
	repoRoot       = ".."
	configMapKey   = "onair.yaml"
	containerName  = "onair"
	defaultTimeout = 25 * time.Second // shutdown.timeout when neither file sets it
)

// pendingKeys may appear in the ConfigMap before configs/onair.yaml documents them: they are
// being added with multi-node support and graceful shutdown. Remove this allowance (and its
// use in documentedKeys) once configs/onair.yaml has both.
var pendingKeys = map[string]bool{
	"node.advertise_url": true,
	"shutdown.timeout":   true,
}

// secretKeys are config keys whose values are secrets: never in the ConfigMap or a literal
// environment value, only in files of the Secret (ONAIR_<KEY>_FILE).
var secretKeys = []string{"mongo.uri", "storage.s3_access_key", "storage.s3_secret_key"}

// --- Kubernetes objects, as far as the tests read them ---

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type keyPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		ConfigMapKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"configMapKeyRef"`
	} `yaml:"valueFrom"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	Env       []envVar `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext *securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string    `yaml:"name"`
		Items []keyPath `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string    `yaml:"secretName"`
		Items      []keyPath `yaml:"items"`
	} `yaml:"secret"`
	EmptyDir *struct {
		Medium    string `yaml:"medium"`
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type podSpec struct {
	ServiceAccountName            string           `yaml:"serviceAccountName"`
	EnableServiceLinks            *bool            `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds *int             `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               *securityContext `yaml:"securityContext"`
	TopologySpreadConstraints     []struct {
		TopologyKey   string        `yaml:"topologyKey"`
		LabelSelector labelSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Affinity   map[string]any `yaml:"affinity"`
	Containers []container    `yaml:"containers"`
	Volumes    []volume       `yaml:"volumes"`
}

type statefulSet struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Replicas            *int          `yaml:"replicas"`
		ServiceName         string        `yaml:"serviceName"`
		PodManagementPolicy string        `yaml:"podManagementPolicy"`
		Selector            labelSelector `yaml:"selector"`
		UpdateStrategy      struct {
			Type string `yaml:"type"`
		} `yaml:"updateStrategy"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string `yaml:"accessModes"`
				Resources   struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Type                  string            `yaml:"type"`
		ClusterIP             string            `yaml:"clusterIP"`
		ExternalTrafficPolicy string            `yaml:"externalTrafficPolicy"`
		Selector              map[string]string `yaml:"selector"`
		Ports                 []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type hpa struct {
	APIVersion string `yaml:"apiVersion"`
	Metadata   meta   `yaml:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas *int `yaml:"minReplicas"`
		MaxReplicas int  `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource *struct {
				Name   string `yaml:"name"`
				Target struct {
					Type               string `yaml:"type"`
					AverageUtilization int    `yaml:"averageUtilization"`
				} `yaml:"target"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type pdb struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		MinAvailable   *int          `yaml:"minAvailable"`
		MaxUnavailable *int          `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type ingress struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Backend struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name   string `yaml:"name"`
								Number int    `yaml:"number"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

// object is one document of a manifest file.
type object struct {
	file       string
	apiVersion string
	kind       string
	meta       meta
	node       *yaml.Node
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.meta.Name, o.file) }

// deploy is everything the tests compare, loaded once per test.
type deploy struct {
	objects    []object
	kustomize  object
	defaults   *yaml.Node // configs/onair.yaml
	config     *yaml.Node // the ConfigMap's onair.yaml
	configMap  object
	secretKeys map[string]bool // keys of the Secret named by secretName
	secretName string
	workload   statefulSet
	container  container
	services   []service
	hpas       []hpa
	pdbs       []pdb
	ingresses  []ingress
	docker     dockerImage
}

func load(t *testing.T) *deploy {
	t.Helper()
	d := &deploy{defaults: readYAML(t, defaultsFile)}
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubernetesDir, err)
	}
	for _, f := range files {
		objs, err := readManifest(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.objects = append(d.objects, objs...)
	}
	var statefulSets []object
	var configMaps []object
	for _, o := range d.objects {
		switch o.kind {
		case "Kustomization":
			d.kustomize = o
		case "StatefulSet", "Deployment":
			// A Deployment's pods would lose their spool and their node id with the pod.
			statefulSets = append(statefulSets, o)
		case "ConfigMap":
			configMaps = append(configMaps, o)
		case "Service":
			d.services = append(d.services, decode[service](t, o))
		case "HorizontalPodAutoscaler":
			d.hpas = append(d.hpas, decode[hpa](t, o))
		case "PodDisruptionBudget":
			d.pdbs = append(d.pdbs, decode[pdb](t, o))
		case "Ingress":
			d.ingresses = append(d.ingresses, decode[ingress](t, o))
		}
	}
	if len(statefulSets) != 1 || statefulSets[0].kind != "StatefulSet" || len(configMaps) != 1 {
		t.Fatalf("want one StatefulSet (and no Deployment) and one ConfigMap, got %v and %d ConfigMaps", statefulSets, len(configMaps))
	}
	d.workload = decode[statefulSet](t, statefulSets[0])
	d.configMap = configMaps[0]
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := d.configMap.node.Decode(&cm); err != nil {
		t.Fatalf("%s: %v", d.configMap, err)
	}
	text, ok := cm.Data[configMapKey]
	if !ok {
		t.Fatalf("%s has no data key %q", d.configMap, configMapKey)
	}
	d.config = parseYAML(t, d.configMap.String()+" "+configMapKey, []byte(text))
	for _, c := range d.workload.Spec.Template.Spec.Containers {
		if c.Name == containerName {
			d.container = c
		}
	}
	if d.container.Name == "" {
		t.Fatalf("the StatefulSet has no container named %q", containerName)
	}
	d.secretName, d.secretKeys = readSecret(t, d.objects)
	d.docker = readDockerfile(t, dockerfile)
	return d
}

// readSecret returns the name and keys of the one Secret manifest.
func readSecret(t *testing.T, objects []object) (string, map[string]bool) {
	t.Helper()
	var secrets []object
	for _, o := range objects {
		if o.kind == "Secret" {
			secrets = append(secrets, o)
		}
	}
	if len(secrets) != 1 {
		t.Fatalf("want one Secret manifest, got %d", len(secrets))
	}
	var s struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	if err := secrets[0].node.Decode(&s); err != nil {
		t.Fatalf("%s: %v", secrets[0], err)
	}
	keys := map[string]bool{}
	for k := range s.Data {
		keys[k] = true
	}
	for k := range s.StringData {
		keys[k] = true
	}
	return secrets[0].meta.Name, keys
}

func readYAML(t *testing.T, file string) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseYAML(t, file, b)
}

func parseYAML(t *testing.T, name string, b []byte) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: want one YAML mapping", name)
	}
	return doc.Content[0]
}

// readManifest reads every document of a multi-document YAML file.
func readManifest(file string) ([]object, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []object
	dec := yaml.NewDecoder(f)
	for i := 1; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(doc.Content) == 0 {
			continue // an empty document (a trailing ---)
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   meta   `yaml:"metadata"`
		}
		if err := doc.Decode(&head); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if head.APIVersion == "" || head.Kind == "" {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", i)
		}
		out = append(out, object{file: filepath.Base(file), apiVersion: head.APIVersion, kind: head.Kind,
			meta: head.Metadata, node: doc.Content[0]})
	}
	if len(out) == 0 {
		return nil, errors.New("no documents")
	}
	return out, nil
}

func decode[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	return v
}

// --- config values ---

// scalar returns the value at a dotted key ("http.addr") of a config tree.
func scalar(n *yaml.Node, key string) (string, bool) {
	for _, part := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return "", false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return "", false
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

// envName is the variable that overrides a key: http.addr -> ONAIR_HTTP_ADDR.
func envName(key string) string {
	return "ONAIR_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// setting is where the value of a key onair runs with comes from.
type setting struct {
	value, from string
}

// effective is the value a key has in the pod: the StatefulSet's env over the image's ENV
// over the ConfigMap's file over configs/onair.yaml (onair's defaults).
func (d *deploy) effective(key string) (setting, bool) {
	for _, e := range d.container.Env {
		if e.Name == envName(key) && e.ValueFrom == nil {
			return setting{e.Value, "the StatefulSet's env " + e.Name}, true
		}
	}
	if v, ok := d.docker.env[envName(key)]; ok {
		return setting{v, "the Dockerfile's ENV " + envName(key)}, true
	}
	if v, ok := scalar(d.config, key); ok {
		return setting{v, "the ConfigMap's " + configMapKey}, true
	}
	if v, ok := scalar(d.defaults, key); ok {
		return setting{v, defaultsFile}, true
	}
	return setting{}, false
}

func (d *deploy) shutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	s, ok := d.effective("shutdown.timeout")
	if !ok {
		return defaultTimeout
	}
	v, err := time.ParseDuration(s.value)
	if err != nil {
		t.Fatalf("shutdown.timeout in %s: %v", s.from, err)
	}
	return v
}

func (d *deploy) listenPort(t *testing.T, key string) int {
	t.Helper()
	s, ok := d.effective(key)
	if !ok {
		t.Fatalf("%s is set nowhere, not even in %s", key, defaultsFile)
	}
	_, p, err := net.SplitHostPort(s.value)
	if err != nil {
		t.Fatalf("%s %q in %s: %v", key, s.value, s.from, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q in %s: port is not a number", key, s.value, s.from)
	}
	return n
}

// documentedKeys lists the dotted keys of configs/onair.yaml with their YAML node kind.
func documentedKeys(defaults *yaml.Node) map[string]yaml.Kind {
	keys := map[string]yaml.Kind{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")
			v := n.Content[i+1]
			keys[key] = v.Kind
			if v.Kind == yaml.MappingNode {
				walk(v, key)
			}
		}
	}
	walk(defaults, "")
	for k := range pendingKeys {
		if _, ok := keys[k]; !ok {
			keys[k] = yaml.ScalarNode
			if section, _, _ := strings.Cut(k, "."); keys[section] == 0 {
				keys[section] = yaml.MappingNode
			}
		}
	}
	return keys
}

// envKeys maps each ONAIR_* variable onair knows to its key, as cmd/onair does: one per key
// of a section (ONAIR_HTTP_ADDR), one per top-level key that is not a section (ONAIR_STREAMS).
func envKeys(documented map[string]yaml.Kind) map[string]string {
	out := map[string]string{}
	for k, kind := range documented {
		switch depth := strings.Count(k, "."); {
		case depth == 1, depth == 0 && kind != yaml.MappingNode:
			out[envName(k)] = k
		}
	}
	return out
}

// --- manifests ---

func TestManifestsParse(t *testing.T) {
	d := load(t)
	var namespace string
	seen := map[string]string{}
	for _, o := range d.objects {
		if o.kind == "Namespace" {
			namespace = o.meta.Name
		}
		if o.kind == "Kustomization" {
			continue
		}
		if o.meta.Name == "" {
			t.Errorf("%s: no metadata.name", o)
		}
		id := o.kind + "/" + o.meta.Name
		if prev, dup := seen[id]; dup {
			t.Errorf("%s is defined twice: in %s and %s", id, prev, o.file)
		}
		seen[id] = o.file
	}
	if namespace == "" {
		t.Fatal("no Namespace manifest")
	}
	for _, o := range d.objects {
		if o.kind != "Namespace" && o.kind != "Kustomization" && o.meta.Namespace != namespace {
			t.Errorf("%s: namespace %q, want %q", o, o.meta.Namespace, namespace)
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	d := load(t)
	if d.kustomize.node == nil {
		t.Fatal("no kustomization.yaml")
	}
	var k struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	if err := d.kustomize.node.Decode(&k); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, o := range d.objects {
		if o.kind != "Kustomization" {
			files[o.file] = true
		}
	}
	for _, r := range k.Resources {
		if !files[r] {
			t.Errorf("kustomization.yaml lists %s, which is not a manifest in %s", r, kubernetesDir)
		}
		delete(files, r)
	}
	for f := range files {
		t.Errorf("%s is not listed in kustomization.yaml's resources", f)
	}
	for _, o := range d.objects {
		if o.kind == "Namespace" && k.Namespace != o.meta.Name {
			t.Errorf("kustomization.yaml namespace %q, want %q", k.Namespace, o.meta.Name)
		}
	}
}

func TestConfigMapUsesDocumentedKeys(t *testing.T) {
	d := load(t)
	documented := documentedKeys(d.defaults)
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := strings.TrimPrefix(prefix+"."+k.Value, ".")
			kind, ok := documented[key]
			switch {
			case !ok:
				t.Errorf("%s line %d: key %s is not documented in configs/%s (onair refuses unknown keys)",
					configMapKey, k.Line, key, defaultsFile)
			case kind != v.Kind:
				t.Errorf("%s line %d: key %s is a %s, configs/%s has a %s",
					configMapKey, k.Line, key, kindName(v.Kind), defaultsFile, kindName(kind))
			case v.Kind == yaml.MappingNode:
				walk(v, key)
			}
		}
	}
	walk(d.config, "")
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	}
	return fmt.Sprintf("kind %d", k)
}

func TestConfigMapProductionValues(t *testing.T) {
	d := load(t)
	for _, tc := range []struct{ key, want, why string }{
		{"log.format", "json", "logs are collected as JSON in Kubernetes"},
		{"storage.backend", "s3", "pods are disposable: recordings go to object storage"},
		{"recordings.enabled", "true", "broadcasts are kept"},
	} {
		got, ok := scalar(d.config, tc.key)
		if !ok || got != tc.want {
			t.Errorf("%s: %s = %q, want %q (%s)", d.configMap, tc.key, got, tc.want, tc.why)
		}
	}
	for _, key := range secretKeys {
		if v, ok := scalar(d.config, key); ok && v != "" {
			t.Errorf("%s sets the secret %s: read it from the Secret (%s_FILE)", d.configMap, key, envName(key))
		}
	}
	// A key the pod's environment overrides must not hold another value in the file:
	// whoever edits the ConfigMap would change nothing. An empty placeholder is fine.
	overrides := map[string]setting{}
	for name, v := range d.docker.env {
		overrides[name] = setting{v, "the image's ENV " + name}
	}
	for _, e := range d.container.Env {
		if e.ValueFrom == nil {
			overrides[e.Name] = setting{e.Value, "the StatefulSet's env " + e.Name}
		}
	}
	for name, key := range envKeys(documentedKeys(d.defaults)) {
		s, ok := overrides[name]
		if v, set := scalar(d.config, key); ok && set && v != "" && v != s.value {
			t.Errorf("%s sets %s = %q, but %s overrides it with %q", d.configMap, key, v, s.from, s.value)
		}
	}
}

// TestPorts: the container, the image and both Services agree with rtmp.addr and http.addr;
// the metrics port (metrics.addr) is the container's, and no Service or Ingress exposes it.
func TestPorts(t *testing.T) {
	d := load(t)
	for _, tc := range []struct {
		name, key   string
		serviceType string // "": no Service may target the port
	}{
		{"rtmp", "rtmp.addr", "LoadBalancer"},
		{"http", "http.addr", "ClusterIP"},
		{"metrics", "metrics.addr", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := d.listenPort(t, tc.key)
			if def, ok := scalar(d.defaults, tc.key); ok && tc.serviceType != "" {
				if _, p, _ := net.SplitHostPort(def); p != strconv.Itoa(want) {
					t.Errorf("%s is %s in %s but port %d in the pod", tc.key, def, defaultsFile, want)
				}
			}
			if tc.serviceType == "" {
				// The default is loopback, unreachable from outside the pod: the pod must
				// listen on its own address for Prometheus.
				if s, _ := d.effective(tc.key); !strings.HasPrefix(s.value, ":") && !strings.HasPrefix(s.value, "0.0.0.0:") &&
					!strings.HasPrefix(s.value, "[::]:") {
					t.Errorf("%s is %q (%s): Prometheus cannot reach it from outside the pod", tc.key, s.value, s.from)
				}
			}
			found := false
			for _, p := range d.container.Ports {
				if p.Name == tc.name {
					found = true
					if p.ContainerPort != want {
						t.Errorf("container port %s is %d, %s listens on %d", tc.name, p.ContainerPort, tc.key, want)
					}
					if p.Protocol != "" && p.Protocol != "TCP" {
						t.Errorf("container port %s: protocol %s, want TCP", tc.name, p.Protocol)
					}
				}
			}
			if !found {
				t.Errorf("the container has no port named %s", tc.name)
			}
			if tc.serviceType == "" {
				for _, s := range d.services {
					for _, p := range s.Spec.Ports {
						if p.TargetPort == tc.name || p.TargetPort == strconv.Itoa(want) || (p.TargetPort == "" && p.Port == want) {
							t.Errorf("Service %s exposes the %s port: keep it to Prometheus in the cluster", s.Metadata.Name, tc.name)
						}
					}
				}
				return
			}
			if !slices.Contains(d.docker.expose, want) {
				t.Errorf("%s does not EXPOSE %d (%s)", dockerfile, want, tc.key)
			}
			svcFound := false
			for _, s := range d.services {
				for _, p := range s.Spec.Ports {
					if p.TargetPort != tc.name {
						continue
					}
					svcFound = true
					if p.Port != want {
						t.Errorf("Service %s port %d, want %d like the container", s.Metadata.Name, p.Port, want)
					}
					if typ := orDefault(s.Spec.Type, "ClusterIP"); typ != tc.serviceType {
						t.Errorf("Service %s: type %s, want %s", s.Metadata.Name, typ, tc.serviceType)
					}
					if p.Protocol != "" && p.Protocol != "TCP" {
						t.Errorf("Service %s: protocol %s, want TCP", s.Metadata.Name, p.Protocol)
					}
				}
			}
			if !svcFound {
				t.Errorf("no Service targets the container port named %s", tc.name)
			}
		})
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func TestServices(t *testing.T) {
	d := load(t)
	pods := d.workload.Spec.Template.Metadata.Labels
	named := map[string]bool{}
	for _, p := range d.container.Ports {
		named[p.Name] = true
	}
	if len(d.services) == 0 {
		t.Fatal("no Service")
	}
	for _, s := range d.services {
		if len(s.Spec.Selector) == 0 || !selects(s.Spec.Selector, pods) {
			t.Errorf("Service %s selector %v does not select the StatefulSet's pods %v", s.Metadata.Name, s.Spec.Selector, pods)
		}
		for _, p := range s.Spec.Ports {
			if !named[p.TargetPort] {
				t.Errorf("Service %s targets port %q: not a port name of the container (target ports by name)", s.Metadata.Name, p.TargetPort)
			}
		}
		// RTMP through a LoadBalancer: keep the streamer's address and avoid a second hop.
		if s.Spec.Type == "LoadBalancer" && s.Spec.ExternalTrafficPolicy != "Local" {
			t.Errorf("Service %s: externalTrafficPolicy %q, want Local", s.Metadata.Name, s.Spec.ExternalTrafficPolicy)
		}
	}
}

// selects reports whether a selector's labels are all on the pods.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestStatefulSetSelectsItsPods(t *testing.T) {
	d := load(t)
	sel := d.workload.Spec.Selector.MatchLabels
	if len(sel) == 0 || !selects(sel, d.workload.Spec.Template.Metadata.Labels) {
		t.Errorf("StatefulSet selector %v does not match its template's labels %v", sel, d.workload.Spec.Template.Metadata.Labels)
	}
}

func TestProbes(t *testing.T) {
	d := load(t)
	c := d.container
	for _, tc := range []struct {
		name  string
		probe *probe
		path  string
	}{
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.probe == nil || tc.probe.HTTPGet == nil {
				t.Fatalf("no %s with httpGet", tc.name)
			}
			if got := tc.probe.HTTPGet.Path; got != tc.path {
				t.Errorf("path %q, want %q", got, tc.path)
			}
			if got := tc.probe.HTTPGet.Port; got != "http" {
				t.Errorf("port %q, want the port named http", got)
			}
			// /readyz checks MongoDB and storage with a 2 s deadline of its own.
			if tc.probe.TimeoutSeconds != 0 && tc.probe.TimeoutSeconds < 2 {
				t.Errorf("timeoutSeconds %d is shorter than onair's own 2 s checks", tc.probe.TimeoutSeconds)
			}
		})
	}
}

func TestResources(t *testing.T) {
	d := load(t)
	res := d.container.Resources
	for _, name := range []string{"cpu", "memory"} {
		req, lim := res.Requests[name], res.Limits[name]
		if req == "" || lim == "" {
			t.Errorf("%s: requests %q and limits %q must both be set", name, req, lim)
			continue
		}
		r, err1 := parseQuantity(req)
		l, err2 := parseQuantity(lim)
		if err := errors.Join(err1, err2); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r > l {
			t.Errorf("%s: request %s is above the limit %s", name, req, lim)
		}
	}
	// GOMEMLIMIT, when set, leaves the Go runtime room under the memory limit.
	for _, e := range d.container.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		soft, err := parseGoBytes(e.Value)
		if err != nil {
			t.Fatalf("GOMEMLIMIT %q: %v", e.Value, err)
		}
		hard, err := parseQuantity(res.Limits["memory"])
		if err != nil {
			t.Fatal(err)
		}
		if soft >= hard {
			t.Errorf("GOMEMLIMIT %s is not below the memory limit %s", e.Value, res.Limits["memory"])
		}
	}
}

var quantityRE = regexp.MustCompile(`^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`)

// parseQuantity reads a Kubernetes quantity ("500m", "2", "512Mi").
func parseQuantity(s string) (float64, error) {
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("quantity %q: not understood", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("quantity %q: %w", s, err)
	}
	mult := map[string]float64{"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[m[2]]
	return v * mult, nil
}

var goBytesRE = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

// parseGoBytes reads a GOMEMLIMIT value ("1800MiB").
func parseGoBytes(s string) (float64, error) {
	m := goBytesRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a Go memory limit: %q", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return v * mult, err
}

func TestGracefulShutdownFits(t *testing.T) {
	d := load(t)
	spec := d.workload.Spec.Template.Spec
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds is not set (the default 30 s is too tight)")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	var preStop time.Duration
	if lc := d.container.Lifecycle; lc != nil && lc.PreStop != nil && lc.PreStop.Sleep != nil {
		preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
	}
	timeout := d.shutdownTimeout(t)
	if grace <= timeout+preStop {
		t.Errorf("terminationGracePeriodSeconds (%s) must exceed the preStop pause (%s) plus shutdown.timeout (%s)",
			grace, preStop, timeout)
	}
}

func TestEnvironment(t *testing.T) {
	d := load(t)
	spec := d.workload.Spec.Template.Spec
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Error("enableServiceLinks must be false: Services named onair-* would put ONAIR_* variables" +
			" such as ONAIR_HTTP_SERVICE_HOST into the container, and onair refuses unknown ONAIR_* variables")
	}
	known := envKeys(documentedKeys(d.defaults))
	mounts := secretMounts(t, d)
	defined := map[string]bool{}
	refRE := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range d.container.Env {
		for _, m := range refRE.FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				t.Errorf("env %s uses $(%s), which is not defined before it (Kubernetes leaves it unexpanded)", e.Name, m[1])
			}
		}
		defined[e.Name] = true
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != d.secretName || !d.secretKeys[ref.Key] {
				t.Errorf("env %s refers to key %q of Secret %q, which the Secret manifest does not have", e.Name, ref.Key, ref.Name)
			}
		}
		if !strings.HasPrefix(e.Name, "ONAIR_") {
			continue
		}
		key, direct := known[e.Name]
		viaFile := false
		if base, ok := strings.CutSuffix(e.Name, "_FILE"); !direct && ok {
			key, viaFile = known[base]
		}
		switch {
		case !direct && !viaFile:
			t.Errorf("env %s is not a key of configs/%s: onair would refuse to start", e.Name, defaultsFile)
		case viaFile:
			file, ok := mounts[e.Value]
			if !ok {
				t.Errorf("env %s reads %s, which is no file of a mounted Secret volume", e.Name, e.Value)
			} else if !d.secretKeys[file] {
				t.Errorf("env %s reads key %q, which Secret %s does not have", e.Name, file, d.secretName)
			}
		case slices.Contains(secretKeys, key) && e.ValueFrom == nil:
			t.Errorf("env %s writes the secret %s into the manifest: use %s_FILE and the Secret", e.Name, key, e.Name)
		}
	}
	for _, tc := range []struct{ name, fieldPath string }{
		{"POD_IP", "status.podIP"},
		// node.id: a StatefulSet's pod names are stable, like its volumes.
		{envName("node.id"), "metadata.name"},
	} {
		found := false
		for _, e := range d.container.Env {
			if e.Name == tc.name {
				found = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == tc.fieldPath
			}
		}
		if !found {
			t.Errorf("env %s must come from the downward API (fieldRef %s)", tc.name, tc.fieldPath)
		}
	}
	adv, ok := d.effective("node.advertise_url")
	if !ok || adv.value == "" {
		t.Fatal("node.advertise_url is not set: other pods could not proxy HLS of rooms live on this one")
	}
	u, err := url.Parse(strings.ReplaceAll(adv.value, "$(POD_IP)", "10.0.0.1"))
	if err != nil || !strings.Contains(adv.value, "$(POD_IP)") {
		t.Fatalf("node.advertise_url %q (%s) must be built from $(POD_IP)", adv.value, adv.from)
	}
	if want := strconv.Itoa(d.listenPort(t, "http.addr")); u.Port() != want {
		t.Errorf("node.advertise_url %q: port %q, want http.addr's %s", adv.value, u.Port(), want)
	}
}

// secretMounts maps each file path the container sees from a Secret volume to its key.
// Every key a volume names must exist in the Secret manifest.
func secretMounts(t *testing.T, d *deploy) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range d.workload.Spec.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != d.secretName {
			t.Errorf("volume %s mounts Secret %q; the manifest's Secret is %q", v.Name, v.Secret.SecretName, d.secretName)
		}
		items := v.Secret.Items
		if len(items) == 0 {
			for k := range d.secretKeys {
				items = append(items, keyPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			if !d.secretKeys[it.Key] {
				t.Errorf("volume %s names key %q, which Secret %s does not have", v.Name, it.Key, d.secretName)
			}
			for _, m := range d.container.VolumeMounts {
				if m.Name == v.Name && m.SubPath == "" {
					out[path.Join(m.MountPath, it.Path)] = it.Key
				}
			}
		}
	}
	return out
}

func TestVolumes(t *testing.T) {
	d := load(t)
	volumes := map[string]volume{}
	for _, v := range d.workload.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(dir string) (string, bool, bool) {
		for _, m := range d.container.VolumeMounts {
			if m.MountPath == dir {
				return m.Name, m.ReadOnly, true
			}
		}
		return "", false, false
	}
	t.Run("data.dir", func(t *testing.T) {
		s, ok := d.effective("data.dir")
		if !ok || !path.IsAbs(s.value) {
			t.Fatalf("data.dir %q (%s) must be an absolute path", s.value, s.from)
		}
		name, ro, ok := mountOf(s.value)
		if !ok {
			t.Fatalf("data.dir %s (%s) is not a volume mount: the root filesystem is read-only", s.value, s.from)
		}
		if ro {
			t.Errorf("data.dir %s is mounted read-only", s.value)
		}
		// The recording spool must outlive the pod: its own volume, which the pod finds
		// again under the same name after a restart or a reschedule.
		if _, ok := volumes[name]; ok {
			t.Errorf("data.dir's volume %s is a pod volume: it must come from the StatefulSet's volumeClaimTemplates", name)
		}
		if claimTemplate(d, name) < 0 {
			t.Errorf("data.dir's volume %s is not one of the StatefulSet's volumeClaimTemplates", name)
		}
	})
	t.Run("config", func(t *testing.T) {
		i := slices.Index(d.container.Args, "-config")
		if i < 0 || i+1 >= len(d.container.Args) {
			t.Fatalf("args %q have no -config <file>", d.container.Args)
		}
		file := d.container.Args[i+1]
		if !slices.Equal(d.container.Args, d.docker.cmd) {
			t.Errorf("args %q differ from the image's CMD %q", d.container.Args, d.docker.cmd)
		}
		name, _, ok := mountOf(path.Dir(file))
		if !ok {
			t.Fatalf("-config %s: its directory is not a volume mount", file)
		}
		v := volumes[name]
		if v.ConfigMap == nil || v.ConfigMap.Name != d.configMap.meta.Name {
			t.Fatalf("-config %s: volume %s is not ConfigMap %s", file, name, d.configMap.meta.Name)
		}
		key := path.Base(file)
		for _, it := range v.ConfigMap.Items {
			if it.Path == path.Base(file) {
				key = it.Key
			}
		}
		if key != configMapKey {
			t.Errorf("-config %s is ConfigMap key %q, want %q", file, key, configMapKey)
		}
	})
}

// claimTemplate returns the index of the StatefulSet's volumeClaimTemplate called name, or -1.
func claimTemplate(d *deploy, name string) int {
	for i, c := range d.workload.Spec.VolumeClaimTemplates {
		if c.Metadata.Name == name {
			return i
		}
	}
	return -1
}

// nodeIDRE reads node.id's pattern from cmd/onair/config.go, which checks it at start.
func nodeIDRE(t *testing.T) *regexp.Regexp {
	t.Helper()
	file := filepath.Join(repoRoot, "cmd", "onair", "config.go")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("nodeIDRE\\s*=\\s*regexp\\.MustCompile\\(`([^`]+)`\\)").FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no nodeIDRE = regexp.MustCompile(`...`)", file)
	}
	re, err := regexp.Compile(string(m[1]))
	if err != nil {
		t.Fatalf("%s: nodeIDRE: %v", file, err)
	}
	return re
}

func TestStatefulSet(t *testing.T) {
	d := load(t)
	ss := d.workload
	pods := ss.Spec.Template.Metadata.Labels
	// serviceName must name a headless Service over the pods: the StatefulSet's identity.
	headless := false
	for _, s := range d.services {
		if s.Metadata.Name == ss.Spec.ServiceName && s.Spec.ClusterIP == "None" && selects(s.Spec.Selector, pods) {
			headless = true
		}
	}
	if ss.Spec.ServiceName == "" || !headless {
		t.Errorf("serviceName %q: want a headless Service (clusterIP: None) of that name selecting the pods", ss.Spec.ServiceName)
	}
	if ss.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q, want Parallel: the HPA's scale-ups should not wait pod by pod", ss.Spec.PodManagementPolicy)
	}
	if ss.Spec.UpdateStrategy.Type != "RollingUpdate" {
		t.Errorf("updateStrategy.type %q, want RollingUpdate", ss.Spec.UpdateStrategy.Type)
	}
	// Pods are named <name>-<ordinal>, and that name is the node id onair checks at start.
	re := nodeIDRE(t)
	h := d.hpas
	ordinal := 999
	if len(h) == 1 {
		ordinal = max(ordinal, h[0].Spec.MaxReplicas-1)
	}
	if pod := ss.Metadata.Name + "-" + strconv.Itoa(ordinal); !re.MatchString(pod) {
		t.Errorf("pod name %q is no valid node.id (%s): onair would refuse to start", pod, re)
	}

	s, _ := d.effective("data.dir")
	name := ""
	for _, m := range d.container.VolumeMounts {
		if m.MountPath == s.value {
			name = m.Name
		}
	}
	i := claimTemplate(d, name)
	if i < 0 {
		t.Fatalf("no volumeClaimTemplate for data.dir %s (volume %q)", s.value, name)
	}
	claim := ss.Spec.VolumeClaimTemplates[i]
	if !slices.Contains(claim.Spec.AccessModes, "ReadWriteOnce") && !slices.Contains(claim.Spec.AccessModes, "ReadWriteOncePod") {
		t.Errorf("volumeClaimTemplate %s: accessModes %v, want ReadWriteOnce (one pod's own volume)", name, claim.Spec.AccessModes)
	}
	size, err := parseQuantity(claim.Spec.Resources.Requests["storage"])
	if err != nil {
		t.Fatalf("volumeClaimTemplate %s: storage: %v", name, err)
	}
	if sp, ok := d.effective("recordings.spool_max_disk"); ok {
		spool, err := strconv.ParseFloat(sp.value, 64)
		if err != nil {
			t.Fatalf("recordings.spool_max_disk %q (%s): %v", sp.value, sp.from, err)
		}
		if spool >= size {
			t.Errorf("recordings.spool_max_disk %s (%s): one recording's spool does not fit in data.dir's volume of %s", sp.value, sp.from, claim.Spec.Resources.Requests["storage"])
		}
	}
}

func TestSecurityContext(t *testing.T) {
	d := load(t)
	pod := d.workload.Spec.Template.Spec.SecurityContext
	c := d.container.SecurityContext
	if pod == nil || c == nil {
		t.Fatal("the pod and the container both need a securityContext")
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(pod.RunAsNonRoot) && !isTrue(c.RunAsNonRoot) {
		t.Error("runAsNonRoot is not true")
	}
	if !isTrue(c.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") {
		t.Error("capabilities do not drop ALL")
	}
	uid := pod.RunAsUser
	if c.RunAsUser != nil {
		uid = c.RunAsUser
	}
	if uid != nil && strconv.Itoa(*uid) != d.docker.uid {
		t.Errorf("runAsUser %d differs from the image's USER %s (data dir ownership)", *uid, d.docker.uid)
	}
}

func TestPodSpreadAndScrape(t *testing.T) {
	d := load(t)
	spec := d.workload.Spec.Template.Spec
	pods := d.workload.Spec.Template.Metadata.Labels
	spread := false
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == "kubernetes.io/hostname" && len(c.LabelSelector.MatchLabels) > 0 && selects(c.LabelSelector.MatchLabels, pods) {
			spread = true
		}
	}
	if !spread && spec.Affinity["podAntiAffinity"] == nil {
		t.Error("no topology spread over kubernetes.io/hostname selecting the pods, and no pod anti-affinity")
	}
	ann := d.workload.Spec.Template.Metadata.Annotations
	want := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(d.listenPort(t, "metrics.addr")),
		"prometheus.io/path":   "/metrics",
	}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, ann[k], v)
		}
	}
}

func TestAutoscalerAndDisruptionBudget(t *testing.T) {
	d := load(t)
	if len(d.hpas) != 1 {
		t.Fatalf("want one HorizontalPodAutoscaler, got %d", len(d.hpas))
	}
	h := d.hpas[0]
	ref := h.Spec.ScaleTargetRef
	if h.APIVersion != "autoscaling/v2" {
		t.Errorf("HPA apiVersion %s, want autoscaling/v2", h.APIVersion)
	}
	if ref.Kind != "StatefulSet" || ref.Name != d.workload.Metadata.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %s %s (%s), want StatefulSet %s (apps/v1)", ref.Kind, ref.Name, ref.APIVersion, d.workload.Metadata.Name)
	}
	cpu := false
	for _, m := range h.Spec.Metrics {
		if m.Type == "Resource" && m.Resource != nil && m.Resource.Name == "cpu" && m.Resource.Target.AverageUtilization > 0 {
			cpu = true
		}
	}
	if !cpu {
		t.Error("the HPA does not scale on CPU utilization")
	}
	if d.container.Resources.Requests["cpu"] == "" {
		t.Error("CPU utilization needs a CPU request")
	}
	minReplicas := 1
	if h.Spec.MinReplicas != nil {
		minReplicas = *h.Spec.MinReplicas
	}
	if minReplicas < 2 || h.Spec.MaxReplicas < minReplicas {
		t.Errorf("HPA replicas %d..%d: want at least 2, and max >= min", minReplicas, h.Spec.MaxReplicas)
	}
	if r := d.workload.Spec.Replicas; r != nil {
		t.Errorf("the StatefulSet sets replicas: %d: every kubectl apply would undo the HPA's scaling", *r)
	}

	if len(d.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, got %d", len(d.pdbs))
	}
	p := d.pdbs[0]
	pods := d.workload.Spec.Template.Metadata.Labels
	if len(p.Spec.Selector.MatchLabels) == 0 || !selects(p.Spec.Selector.MatchLabels, pods) {
		t.Errorf("PDB selector %v does not select the StatefulSet's pods %v", p.Spec.Selector.MatchLabels, pods)
	}
	if p.Spec.MinAvailable == nil || *p.Spec.MinAvailable != 1 {
		got := "unset"
		if p.Spec.MinAvailable != nil {
			got = strconv.Itoa(*p.Spec.MinAvailable)
		}
		t.Errorf("PDB minAvailable %s, want 1", got)
	} else if *p.Spec.MinAvailable >= minReplicas {
		t.Errorf("PDB minAvailable %d with %d replicas would block every node drain", *p.Spec.MinAvailable, minReplicas)
	}
}

func TestIngress(t *testing.T) {
	d := load(t)
	public, _ := scalar(d.config, "http.public_url")
	pu, err := url.Parse(public)
	if err != nil {
		t.Fatalf("http.public_url %q: %v", public, err)
	}
	for _, ing := range d.ingresses {
		for _, r := range ing.Spec.Rules {
			if public != "" && r.Host != pu.Hostname() {
				t.Errorf("Ingress %s host %q, http.public_url is %q", ing.Metadata.Name, r.Host, public)
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if !servicePort(d.services, b.Name, b.Port.Name, b.Port.Number) {
					t.Errorf("Ingress %s backend %s:%s%d is not a Service port", ing.Metadata.Name, b.Name, b.Port.Name, b.Port.Number)
				}
			}
		}
	}
}

func servicePort(services []service, name, portName string, number int) bool {
	for _, s := range services {
		if s.Metadata.Name != name {
			continue
		}
		for _, p := range s.Spec.Ports {
			if (portName != "" && p.Name == portName) || (number != 0 && p.Port == number) {
				return true
			}
		}
	}
	return false
}

// --- Dockerfile ---

// dockerImage is what the tests read of the Dockerfile, by matching its lines: no parser.
type dockerImage struct {
	text   string            // the whole file, continuation lines joined
	expose []int             // EXPOSE of the final stage
	uid    string            // USER of the final stage, without the group
	env    map[string]string // ENV KEY=value of the final stage
	cmd    []string          // CMD of the final stage (exec form)
}

var (
	dockerFromRE   = regexp.MustCompile(`(?m)^FROM .* AS (\S+)$`)
	dockerCopyRE   = regexp.MustCompile(`(?m)^COPY (--from=(\S+) )?(?:--\S+ )*(.+) \S+$`)
	dockerExposeRE = regexp.MustCompile(`(?m)^EXPOSE (.+)$`)
	dockerUserRE   = regexp.MustCompile(`(?m)^USER ([^:\s]+)`)
	dockerEnvRE    = regexp.MustCompile(`(?m)^ENV (\w+)=(\S+)$`)
	dockerCmdRE    = regexp.MustCompile(`(?m)^CMD (\[.*\])$`)
)

func readDockerfile(t *testing.T, file string) dockerImage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	img := dockerImage{text: strings.ReplaceAll(string(b), "\\\n", " "), env: map[string]string{}}
	i := strings.LastIndex(img.text, "\nFROM ")
	if i < 0 {
		t.Fatalf("%s has no FROM", file)
	}
	final := img.text[i+1:]
	for _, m := range dockerExposeRE.FindAllStringSubmatch(final, -1) {
		for _, p := range strings.Fields(m[1]) {
			n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			if err != nil {
				t.Fatalf("%s: EXPOSE %s: %v", file, p, err)
			}
			img.expose = append(img.expose, n)
		}
	}
	if m := dockerUserRE.FindStringSubmatch(final); m != nil {
		img.uid = m[1]
	}
	for _, m := range dockerEnvRE.FindAllStringSubmatch(final, -1) {
		img.env[m[1]] = strings.Trim(m[2], `"`)
	}
	if m := dockerCmdRE.FindStringSubmatch(final); m != nil {
		if err := json.Unmarshal([]byte(m[1]), &img.cmd); err != nil {
			t.Fatalf("%s: CMD: %v", file, err)
		}
	}
	return img
}

func TestDockerfile(t *testing.T) {
	d := load(t)
	img := d.docker
	for _, port := range []int{d.listenPort(t, "rtmp.addr"), d.listenPort(t, "http.addr")} {
		if !slices.Contains(img.expose, port) {
			t.Errorf("the final stage does not EXPOSE %d", port)
		}
	}
	if uid, err := strconv.Atoi(img.uid); err != nil || uid == 0 {
		t.Errorf("the final stage's USER is %q: want a numeric non-root user (runAsNonRoot cannot check a name)", img.uid)
	}
	if len(img.cmd) == 0 {
		t.Error("the final stage has no CMD in exec form")
	}
	if dir, ok := img.env["ONAIR_DATA_DIR"]; !ok || !path.IsAbs(dir) {
		t.Errorf("the final stage should set ONAIR_DATA_DIR to an absolute, writable directory, got %q", dir)
	}
	var stages []string
	for _, m := range dockerFromRE.FindAllStringSubmatch(img.text, -1) {
		stages = append(stages, m[1])
	}
	ignore := readIgnore(t, dockerignore)
	for _, m := range dockerCopyRE.FindAllStringSubmatch(img.text, -1) {
		if m[2] != "" {
			if !slices.Contains(stages, m[2]) {
				t.Errorf("COPY --from=%s: no stage of that name", m[2])
			}
			continue
		}
		for _, src := range strings.Fields(m[3]) {
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("COPY %s: not in the build context (the repository root): %v", src, err)
			}
			if src != "." && ignored(ignore, src) {
				t.Errorf("COPY %s: excluded by %s", src, dockerignore)
			}
		}
	}
	for _, p := range []string{".git", "web/ui/node_modules", "web/ui/dist/watch.js"} {
		if !ignored(ignore, p) {
			t.Errorf("%s does not exclude %s from the build context", dockerignore, p)
		}
	}
	if ignored(ignore, "web/ui/dist/README.md") {
		t.Errorf("%s excludes web/ui/dist/README.md, which web/assets.go embeds before the bundle exists", dockerignore)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/onair", "npm ci", "npm run --silent build"} {
		if !regexp.MustCompile(`(?m)^RUN .*` + regexp.QuoteMeta(want)).MatchString(img.text) {
			t.Errorf("no RUN has %q", want)
		}
	}
}

type ignorePattern struct {
	pattern string
	negate  bool
}

func readIgnore(t *testing.T, file string) []ignorePattern {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []ignorePattern
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, neg := strings.CutPrefix(line, "!")
		out = append(out, ignorePattern{pattern: strings.Trim(p, "/"), negate: neg})
	}
	return out
}

// ignored applies .dockerignore rules (enough of them for this file: globs per path element,
// a leading **/, the last matching rule wins, a match on a parent excludes its children).
func ignored(patterns []ignorePattern, p string) bool {
	out := false
	parts := strings.Split(p, "/")
	for _, ip := range patterns {
		pat, anywhere := strings.CutPrefix(ip.pattern, "**/")
		match := false
		for end := 1; end <= len(parts) && !match; end++ {
			starts := []int{0}
			if anywhere {
				starts = starts[:0]
				for s := 0; s < end; s++ {
					starts = append(starts, s)
				}
			}
			for _, s := range starts {
				if ok, _ := path.Match(pat, strings.Join(parts[s:end], "/")); ok {
					match = true
				}
			}
		}
		if match {
			out = !ip.negate
		}
	}
	return out
}

// --- Grafana dashboard ---

// exportedMetrics reads the metrics onair exports, with their labels, from
// cmd/onair/metrics.go: the names of its prometheus.*Opts literals with the label list
// of their constructor, and the calls of its Desc helper d(name, help, labels...).
// Histograms are expanded to their _bucket (with le), _sum and _count series.
func exportedMetrics(t *testing.T) (metrics map[string][]string, series map[string][]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, "cmd", "onair", "metrics.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	strs := func(exprs []ast.Expr) []string {
		var out []string
		for _, e := range exprs {
			v := "" // a help text made of several literals
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, _ = strconv.Unquote(lit.Value)
			}
			out = append(out, v)
		}
		return out
	}
	metrics, series = map[string][]string{}, map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "d" {
			if args := strs(call.Args); len(args) >= 2 && args[0] != "" {
				metrics[args[0]], series[args[0]] = args[2:], args[2:]
			}
			return true
		}
		opts, ok := call.Args[0].(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := opts.Type.(*ast.SelectorExpr)
		if !ok || fmt.Sprint(sel.X) != "prometheus" || !strings.HasSuffix(sel.Sel.Name, "Opts") {
			return true
		}
		var name string
		for _, e := range opts.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok && fmt.Sprint(kv.Key) == "Name" {
				name = strs([]ast.Expr{kv.Value})[0]
			}
		}
		if name == "" {
			t.Fatalf("cmd/onair/metrics.go: a %s without a literal Name", sel.Sel.Name)
		}
		var labels []string
		if len(call.Args) > 1 {
			if l, ok := call.Args[1].(*ast.CompositeLit); ok {
				labels = strs(l.Elts)
			}
		}
		metrics[name] = labels
		if sel.Sel.Name == "HistogramOpts" {
			series[name+"_bucket"] = append(slices.Clone(labels), "le")
			series[name+"_sum"], series[name+"_count"] = labels, labels
		} else {
			series[name] = labels
		}
		return true
	})
	if len(metrics) < 10 {
		t.Fatalf("read only %d metrics from cmd/onair/metrics.go: %v", len(metrics), metrics)
	}
	return metrics, series
}

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"instance", "job"}

var (
	promSeriesRE  = regexp.MustCompile(`\b(?:onair|go|process)_[a-z0-9_]+\b`)
	promMatcherRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	promGroupRE   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	legendLabelRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
)

// promQuery is what a PromQL expression refers to, found by regular expressions.
type promQuery struct {
	metrics []string // metric names as onair exports them (histograms without suffix)
	grouped []string // label names of grouping clauses: what a legend can show
	allowed []string // label names the referenced series have
}

// checkPromQL finds the series of expr and checks that onair exports them and has the
// labels its matchers and grouping clauses name.
func checkPromQL(expr string, metrics, series map[string][]string) (promQuery, error) {
	q := promQuery{allowed: slices.Clone(targetLabels)}
	for _, name := range promSeriesRE.FindAllString(expr, -1) {
		labels, ok := series[name]
		if !ok && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			return q, fmt.Errorf("%s is not a series onair exports", name)
		}
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, cut := strings.CutSuffix(name, suffix); cut && metrics[b] != nil || cut && series[b+"_bucket"] != nil {
				base = b
			}
		}
		q.metrics = append(q.metrics, base)
		q.allowed = append(q.allowed, labels...)
	}
	if len(q.metrics) == 0 {
		return q, errors.New("no metric")
	}
	var labels []string
	for _, m := range promMatcherRE.FindAllStringSubmatch(expr, -1) {
		labels = append(labels, m[1])
	}
	for _, m := range promGroupRE.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
				q.grouped = append(q.grouped, l)
			}
		}
	}
	for _, l := range labels {
		if !slices.Contains(q.allowed, l) {
			return q, fmt.Errorf("label %s is not a label of %s", l, strings.Join(q.metrics, ", "))
		}
	}
	return q, nil
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
		Datasource   *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a collapsed row's panels
}

func TestDashboard(t *testing.T) {
	metrics, series := exportedMetrics(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID           string      `json:"uid"`
		Title         string      `json:"title"`
		SchemaVersion int         `json:"schemaVersion"`
		Panels        []dashPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want both set and a schema of Grafana 10 or later", dash.UID, dash.Title, dash.SchemaVersion)
	}
	dsVar := ""
	for _, v := range dash.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			if json.Unmarshal(v.Query, &q) == nil && q == "prometheus" {
				dsVar = v.Name
			}
		case "query":
			q := v.Definition
			m := labelValuesRE.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(<series>, <label>)", v.Name, q)
				continue
			}
			pq, err := checkPromQL(m[1], metrics, series)
			if err == nil && !slices.Contains(pq.allowed, m[2]) {
				err = fmt.Errorf("label %s is not a label of %s", m[2], strings.Join(pq.metrics, ", "))
			}
			if err != nil {
				t.Errorf("variable %s: %q: %v", v.Name, q, err)
			}
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus datasource variable")
	}
	wantUID := "${" + dsVar + "}"

	var all []dashPanel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]string{}
	shown := map[string][]string{}
	for _, p := range all {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d is missing or also used by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != wantUID {
			t.Errorf("panel %q: datasource should be %s", p.Title, wantUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != wantUID {
				t.Errorf("panel %q query %s: datasource %q, want %s", p.Title, tg.RefID, tg.Datasource.UID, wantUID)
			}
			q, err := checkPromQL(tg.Expr, metrics, series)
			if err != nil {
				t.Errorf("panel %q query %s %q: %v", p.Title, tg.RefID, tg.Expr, err)
				continue
			}
			for _, m := range q.metrics {
				shown[m] = append(shown[m], p.Title)
			}
			for _, l := range legendLabelRE.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !slices.Contains(q.grouped, l[1]) {
					t.Errorf("panel %q query %s: legend shows {{%s}}, which the query does not group by", p.Title, tg.RefID, l[1])
				}
			}
		}
	}
	var missing []string
	for m := range metrics {
		if len(shown[m]) == 0 {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no panel shows %s", strings.Join(missing, ", "))
	}
}
