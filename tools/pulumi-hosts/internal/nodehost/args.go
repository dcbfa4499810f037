// Package nodehost is a stand-in for pulumi-language-nodejs, the engine's Node.js language host
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3, not served by this machine's Go
// module proxy). It starts `node` on @pulumi/pulumi's cmd/run (or cmd/run-policy-pack) with the
// arguments and environment the real host of the same version (3.248) passes.
package nodehost

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/shlex"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Version is the pulumi release whose Node.js host this one stands in for.
const Version = "3.248.0"

const (
	// The module the program runs through; PULUMI_LANGUAGE_NODEJS_RUN_PATH overrides it (as upstream).
	defaultRunPath        = "@pulumi/pulumi/cmd/run"
	policyPackRunPath     = "@pulumi/pulumi/cmd/run-policy-pack"
	defaultPluginRunPath  = "@pulumi/pulumi/cmd/run-plugin"
	envConfig             = "PULUMI_CONFIG"
	envConfigSecretKeys   = "PULUMI_CONFIG_SECRET_KEYS"
	envTypescript         = "PULUMI_NODEJS_TYPESCRIPT"
	envTsconfigPath       = "PULUMI_NODEJS_TSCONFIG_PATH"
	exitUserActionableMsg = 32 // the program already printed an actionable error: bail quietly
)

// options are the project's `runtime.options` the host reads.
type options struct {
	typescript     bool // default true
	tsconfigPath   string
	nodeargs       string
	packagemanager string // auto, npm, yarn, pnpm or bun
}

func parseOptions(raw map[string]any) (options, error) {
	o := options{typescript: true, packagemanager: "auto"}
	if v, ok := raw["typescript"]; ok {
		b, ok := v.(bool)
		if !ok {
			return o, errors.New("typescript option must be a boolean")
		}
		o.typescript = b
	}
	if v, ok := raw["tsconfig"]; ok {
		s, ok := v.(string)
		if !ok {
			return o, errors.New("tsconfigpath option must be a string")
		}
		o.tsconfigPath = s
	}
	if v, ok := raw["nodeargs"]; ok {
		s, ok := v.(string)
		if !ok {
			return o, errors.New("nodeargs option must be a string")
		}
		o.nodeargs = s
	}
	if v, ok := raw["packagemanager"]; ok {
		s, ok := v.(string)
		if !ok {
			return o, errors.New("packagemanager option must be a string")
		}
		switch s {
		case "auto", "npm", "yarn", "pnpm", "bun":
			o.packagemanager = s
		default:
			return o, fmt.Errorf("packagemanager option must be one of auto, npm, yarn, pnpm or bun, got %q", s)
		}
	}
	return o, nil
}

// optionsEnv is what the typescript options add to node's environment.
func optionsEnv(o options) []string {
	var env []string
	if o.typescript {
		env = append(env, envTypescript+"=true")
	}
	if o.tsconfigPath != "" {
		env = append(env, envTsconfigPath+"="+o.tsconfigPath)
	}
	return env
}

// runArguments is node's command line after the node options: cmd/run's path, its flags (each only
// when non-empty), the entry point, then the program's own arguments. syncDir is empty here: the
// SDK no longer reads the synchronous-invoke pipes (`--sync`).
func runArguments(req *pulumirpc.RunRequest, runPath, monitor, engine, syncDir, tracing string) []string {
	args := []string{runPath}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", monitor)
	add("engine", engine)
	add("sync", syncDir)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("root-directory", req.GetInfo().GetRootDirectory())
	add("stack", req.GetStack())
	add("pwd", req.GetInfo().GetProgramDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", tracing)
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

// nodeArgv is the full argument list of node: nodeargs (shell-split), then runArguments.
func nodeArgv(o options, run []string) ([]string, error) {
	pre, err := shlex.Split(o.nodeargs)
	if err != nil {
		return nil, err
	}
	return append(pre, run...), nil
}

// configJSON is PULUMI_CONFIG: keys in the old `<namespace>:config:<name>` form, which every
// @pulumi/pulumi reads (newer ones read both).
func configJSON(cfg map[string]string) (string, error) {
	if cfg == nil {
		return "{}", nil
	}
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		key, err := config.ParseKey(k)
		if err != nil {
			return "", err
		}
		out[key.Namespace()+":config:"+key.Name()] = v
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// secretKeysJSON is PULUMI_CONFIG_SECRET_KEYS.
func secretKeysJSON(keys []string) (string, error) {
	if keys == nil {
		return "[]", nil
	}
	b, err := json.Marshal(keys)
	return string(b), err
}

// runEnv is node's environment for Run: ours, then the config, then the typescript options.
func runEnv(base []string, req *pulumirpc.RunRequest, o options) ([]string, error) {
	cfg, err := configJSON(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration: %w", err)
	}
	secret, err := secretKeysJSON(req.GetConfigSecretKeys())
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration secret keys: %w", err)
	}
	env := append([]string{}, base...)
	env = append(env, envConfig+"="+cfg, envConfigSecretKeys+"="+secret)
	return append(env, optionsEnv(o)...), nil
}

// pluginArgv is node's argument list for RunPlugin: the run path, nodeargs, then for a policy pack
// (kind analyzer) the request's args followed by the pack's directory, otherwise the directory first.
func pluginArgv(req *pulumirpc.RunPluginRequest, o options, runPath string) ([]string, error) {
	args := []string{runPath}
	pre, err := shlex.Split(o.nodeargs)
	if err != nil {
		return nil, err
	}
	args = append(args, pre...)
	dir := req.GetInfo().GetProgramDirectory()
	if req.GetKind() == "analyzer" {
		args = append(args, req.GetArgs()...)
		return append(args, dir), nil
	}
	args = append(args, dir)
	return append(args, req.GetArgs()...), nil
}
