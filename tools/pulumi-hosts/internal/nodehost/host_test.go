package nodehost

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func runRequest(t *testing.T, opts map[string]any) *pulumirpc.RunRequest {
	t.Helper()
	o, err := structpb.NewStruct(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &pulumirpc.RunRequest{
		Project:          "thinlayer",
		Stack:            "uat",
		Organization:     "organization",
		DryRun:           true,
		Parallel:         16,
		Config:           map[string]string{"thinlayer:appDir": "examples/django-app", "kubernetes:context": "kind"},
		ConfigSecretKeys: []string{"thinlayer:kubeconfig"},
		Args:             []string{"extra"},
		Info: &pulumirpc.ProgramInfo{
			RootDirectory:    "/src/proj",
			ProgramDirectory: "/src/proj",
			EntryPoint:       ".",
			Options:          o,
		},
	}
}

func TestRunArgumentsMatchUpstreamOrder(t *testing.T) {
	req := runRequest(t, map[string]any{"typescript": true})
	got := runArguments(req, "/nm/@pulumi/pulumi/cmd/run/index.js", "127.0.0.1:1", "127.0.0.1:2", "", "")
	want := []string{
		"/nm/@pulumi/pulumi/cmd/run/index.js",
		"--monitor", "127.0.0.1:1",
		"--engine", "127.0.0.1:2",
		"--organization", "organization",
		"--project", "thinlayer",
		"--root-directory", "/src/proj",
		"--stack", "uat",
		"--pwd", "/src/proj",
		"--dry-run",
		"--parallel", "16",
		".",
		"extra",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("args\n got %q\nwant %q", got, want)
	}

	req.DryRun = false
	req.Organization = ""
	got = runArguments(req, "run", "m", "e", "", "http://zipkin")
	if strings.Contains(strings.Join(got, " "), "--dry-run") || strings.Contains(strings.Join(got, " "), "--organization") {
		t.Errorf("flags with empty values or false must be left out: %q", got)
	}
	if i := indexOf(got, "--tracing"); i < 0 || got[i+1] != "http://zipkin" {
		t.Errorf("--tracing missing: %q", got)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestNodeArgvPutsNodeargsFirst(t *testing.T) {
	o, err := parseOptions(map[string]any{"nodeargs": "--max-old-space-size=4096 --enable-source-maps"})
	if err != nil {
		t.Fatal(err)
	}
	argv, err := nodeArgv(o, []string{"run.js", "--monitor", "m", "."})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--max-old-space-size=4096", "--enable-source-maps", "run.js", "--monitor", "m", "."}
	if !reflect.DeepEqual(argv, want) {
		t.Fatalf("argv = %q, want %q", argv, want)
	}
}

func TestRunEnvConfigAndTypescript(t *testing.T) {
	req := runRequest(t, map[string]any{"typescript": true, "tsconfig": "tsconfig.build.json"})
	o, err := parseOptions(req.Info.Options.AsMap())
	if err != nil {
		t.Fatal(err)
	}
	env, err := runEnv([]string{"PATH=/bin"}, req, o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	var cfg map[string]string
	if err := json.Unmarshal([]byte(got["PULUMI_CONFIG"]), &cfg); err != nil {
		t.Fatal(err)
	}
	wantCfg := map[string]string{"thinlayer:config:appDir": "examples/django-app", "kubernetes:config:context": "kind"}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("PULUMI_CONFIG = %v, want %v", cfg, wantCfg)
	}
	if got["PULUMI_CONFIG_SECRET_KEYS"] != `["thinlayer:kubeconfig"]` {
		t.Errorf("PULUMI_CONFIG_SECRET_KEYS = %s", got["PULUMI_CONFIG_SECRET_KEYS"])
	}
	if got["PULUMI_NODEJS_TYPESCRIPT"] != "true" || got["PULUMI_NODEJS_TSCONFIG_PATH"] != "tsconfig.build.json" || got["PATH"] != "/bin" {
		t.Errorf("env = %v", got)
	}

	req.Config, req.ConfigSecretKeys = nil, nil
	env, _ = runEnv(nil, req, options{})
	if !reflect.DeepEqual(env, []string{"PULUMI_CONFIG={}", "PULUMI_CONFIG_SECRET_KEYS=[]"}) {
		t.Errorf("empty config env = %q", env)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil || !o.typescript || o.packagemanager != "auto" {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	for _, bad := range []map[string]any{{"typescript": "yes"}, {"tsconfig": 1.0}, {"nodeargs": true}, {"packagemanager": "deno"}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestPluginArgvPolicyPackDirLast(t *testing.T) {
	req := &pulumirpc.RunPluginRequest{Kind: "analyzer", Args: []string{"127.0.0.1:5"}, Info: &pulumirpc.ProgramInfo{ProgramDirectory: "/p/policy"}}
	got, err := pluginArgv(req, options{}, "/nm/run-policy-pack/index.js")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/nm/run-policy-pack/index.js", "127.0.0.1:5", "/p/policy"}; !reflect.DeepEqual(got, want) {
		t.Errorf("analyzer argv = %q, want %q", got, want)
	}
	req.Kind = "tool"
	got, _ = pluginArgv(req, options{}, "run-plugin")
	if want := []string{"run-plugin", "/p/policy", "127.0.0.1:5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plugin argv = %q, want %q", got, want)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRequiredPackagesFromNodeModules(t *testing.T) {
	root := t.TempDir()
	writeJSON(t, filepath.Join(root, "package.json"), map[string]any{"name": "proj", "pulumi": map[string]any{"resource": true}})
	nm := filepath.Join(root, "node_modules")
	writeJSON(t, filepath.Join(nm, "@pulumi", "pulumi", "package.json"), map[string]any{"name": "@pulumi/pulumi", "version": "3.248.0"})
	writeJSON(t, filepath.Join(nm, "@pulumi", "command", "package.json"), map[string]any{
		"name": "@pulumi/command", "version": "1.2.1", "pulumi": map[string]any{"resource": true, "name": "command", "version": "1.2.1"}})
	writeJSON(t, filepath.Join(nm, "@pulumi", "kubernetes", "package.json"), map[string]any{
		"name": "@pulumi/kubernetes", "version": "4.25.0", "pulumi": map[string]any{"resource": true}})
	writeJSON(t, filepath.Join(nm, "left-pad", "package.json"), map[string]any{"name": "left-pad", "version": "1.0.0"})
	// A nested policy pack's plugins are not the program's.
	pack := filepath.Join(root, "policy")
	if err := os.MkdirAll(pack, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pack, "PulumiPolicy.yaml"), []byte("runtime: nodejs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(pack, "node_modules", "@pulumi", "aws", "package.json"), map[string]any{
		"name": "@pulumi/aws", "version": "7.0.0", "pulumi": map[string]any{"resource": true}})
	// A symlinked copy is visited once.
	if err := os.Symlink(filepath.Join(nm, "@pulumi", "command"), filepath.Join(nm, "command-link")); err != nil {
		t.Fatal(err)
	}

	pkgs, err := requiredPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Kind+":"+p.Name+"@"+p.Version)
	}
	sort.Strings(got)
	want := []string{"resource:command@v1.2.1", "resource:kubernetes@v4.25.0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("packages = %v, want %v", got, want)
	}
}

func TestThirdPartyPluginWithoutNameFails(t *testing.T) {
	root := t.TempDir()
	writeJSON(t, filepath.Join(root, "node_modules", "acme", "package.json"), map[string]any{
		"name": "acme", "version": "1.0.0", "pulumi": map[string]any{"resource": true}})
	_, err := requiredPackages(root)
	if err == nil || !strings.Contains(err.Error(), "third-party plugin 'acme'") {
		t.Fatalf("err = %v", err)
	}
}

func TestExecNodeExitCodes(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for this test: ", err)
	}
	h := New("", "")
	ctx := context.Background()
	if r := h.execNode(ctx, node, []string{"-e", "process.exit(0)"}, os.Environ()); r.Error != "" || r.Bail {
		t.Errorf("exit 0: %v", r)
	}
	if r := h.execNode(ctx, node, []string{"-e", "process.exit(32)"}, os.Environ()); r.Error != "" || !r.Bail {
		t.Errorf("exit 32 must bail quietly: %v", r)
	}
	if r := h.execNode(ctx, node, []string{"-e", "process.exit(3)"}, os.Environ()); r.Error != "Program exited with non-zero exit code: 3" {
		t.Errorf("exit 3: %v", r)
	}
	r := h.execNode(ctx, node, []string{"-e", "console.error('<--- Last few GCs --->'); process.exit(134)"}, os.Environ())
	if !strings.HasPrefix(r.Error, "Program exited with non-zero exit code: 134. Detected a possible out of memory error") {
		t.Errorf("OOM: %v", r)
	}
	if r := h.execNode(ctx, "/nonexistent/node", nil, nil); !strings.HasPrefix(r.Error, "Problem executing program") {
		t.Errorf("missing binary: %v", r)
	}
}

func TestRunNeedsEngine(t *testing.T) {
	if _, err := New("", "").Run(context.Background(), runRequest(t, nil)); err == nil {
		t.Fatal("Run without an engine address must fail")
	}
}
