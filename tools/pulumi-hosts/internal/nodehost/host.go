package nodehost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Host implements pulumirpc.LanguageRuntimeServer for Node.js programs and policy packs.
type Host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu            sync.Mutex
	engineAddress string
	tracing       string
	cancelCtx     context.Context
	cancelFunc    context.CancelFunc
}

// New returns a host for the engine at engineAddress ("" until Handshake when started by hand).
func New(engineAddress, tracing string) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{engineAddress: engineAddress, tracing: tracing, cancelCtx: ctx, cancelFunc: cancel}
}

func (h *Host) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

func (h *Host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

// Handshake records the engine's address (the engine sends it when it attaches to a host started
// by hand) and watches the engine's health, as upstream does.
func (h *Host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	h.engineAddress = req.GetEngineAddress()
	h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		if err := rpcutil.Healthcheck(h.cancelCtx, req.GetEngineAddress(), 5*time.Minute, func() {}); err != nil {
			return nil, fmt.Errorf("could not start health check host RPC server: %w", err)
		}
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *Host) GetRequiredPackages(_ context.Context, req *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	pkgs, err := requiredPackages(req.GetInfo().GetProgramDirectory())
	if err != nil {
		// Upstream logs these and answers with what it found.
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: one or more errors while discovering plugins: %v\n", err)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Name+pkgs[i].Version < pkgs[j].Name+pkgs[j].Version })
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// locateModule resolves mod from dir with node's require.resolve, as upstream does.
func locateModule(ctx context.Context, mod, dir, nodeBin string, isPlugin bool) (string, error) {
	install := "pulumi install"
	if isPlugin {
		install = "npm install in " + dir
	}
	script := fmt.Sprintf(`try { console.log(require.resolve('%s')); } catch (error) { `+
		`if (error.code === 'MODULE_NOT_FOUND') { console.error("It looks like the Pulumi SDK has not been installed. Have you run %s?") } `+
		`else { console.error(error.message); } process.exit(1); }`, mod, install)
	cmd := exec.CommandContext(ctx, nodeBin, "-e", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", errors.New(string(ee.Stderr))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func (h *Host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	engine := h.engine()
	if engine == "" {
		return nil, errors.New("when debugging or running explicitly, must call Handshake before Run")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not find node on the $PATH: %s", err.Error())}, nil
	}
	runPath := os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH")
	if runPath == "" {
		runPath = defaultRunPath
	}
	runPath, err = locateModule(ctx, runPath, req.GetInfo().GetProgramDirectory(), nodeBin, false)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	opts, err := parseOptions(req.GetInfo().GetOptions().AsMap())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	env, err := runEnv(os.Environ(), req, opts)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	// The SDK talks to the engine's monitor directly: upstream puts a pass-through proxy in
	// between, which only existed for the synchronous-invoke pipes the SDK no longer uses.
	argv, err := nodeArgv(opts, runArguments(req, runPath, req.GetMonitorAddress(), engine, "", h.tracing))
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return h.execNode(ctx, nodeBin, argv, env), nil
}

// execNode runs the program with our stdout and stderr, and turns its exit into a RunResponse the
// way upstream does: exit 32 bails (the program already said what is wrong), other failures are
// "Program exited with non-zero exit code: N", with a hint when node ran out of heap.
func (h *Host) execNode(ctx context.Context, nodeBin string, argv, env []string) *pulumirpc.RunResponse {
	cmdCtx, cancel := context.WithCancel(h.cancelCtx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	cmd := exec.CommandContext(cmdCtx, nodeBin, argv...)
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = env
	// Node may switch its stdio to non-blocking; never hand it our own *os.File.
	cmd.Stdout = struct{ io.Writer }{os.Stdout}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	oom := make(chan bool, 1)
	go func() { oom <- scanForOOM(io.TeeReader(pr, os.Stderr)) }()

	err := cmd.Run()
	_ = pw.Close()
	sawOOM := <-oom
	if err == nil {
		return &pulumirpc.RunResponse{}
	}
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}
	}
	switch code := ee.ExitCode(); code {
	case 0:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited unexpectedly: %v", ee)}
	case exitUserActionableMsg:
		return &pulumirpc.RunResponse{Bail: true}
	default:
		msg := fmt.Sprintf("Program exited with non-zero exit code: %d", code)
		if sawOOM {
			msg += ". " + oomMessage
		}
		return &pulumirpc.RunResponse{Error: msg}
	}
}

const oomMessage = "Detected a possible out of memory error. Consider increasing the memory available to the nodejs process " +
	"by setting the `nodeargs` runtime option in Pulumi.yaml to `nodeargs: --max-old-space-size=<size>` where " +
	"`<size>` is the maximum memory in megabytes that can be allocated to nodejs. " +
	"See https://www.pulumi.com/docs/concepts/projects/project-file/#runtime-options"

// scanForOOM reads all of r and reports whether node printed one of its out-of-memory errors.
func scanForOOM(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	found := false
	for sc.Scan() {
		line := sc.Text()
		// node's own OOM report, or the debugger assertion that can hide it (pulumi/pulumi#16596)
		if strings.Contains(line, "<--- Last few GCs --->") ||
			strings.Contains(line, "Check failed: needs_context && current_scope_ == closure_scope_") {
			found = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
	return found
}

// RunPlugin runs a Node.js plugin; for a policy pack (kind analyzer) through
// @pulumi/pulumi/cmd/run-policy-pack, behind the SDK's policy proxy, which hands the pack the
// stack's organization, project, stack, dry-run flag and config before it starts, as upstream does.
func (h *Host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	ctx := server.Context()
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return err
	}
	opts, err := parseOptions(req.GetInfo().GetOptions().AsMap())
	if err != nil {
		return err
	}
	env := append(append([]string{}, req.GetEnv()...), optionsEnv(opts)...)
	isPolicy := req.GetKind() == "analyzer"
	runPath := policyPackRunPath
	if !isPolicy {
		if runPath = os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH"); runPath == "" {
			runPath = defaultPluginRunPath
		}
	}
	runPath, err = locateModule(ctx, runPath, req.GetInfo().GetProgramDirectory(), nodeBin, true)
	if err != nil {
		return err
	}
	args, err := pluginArgv(req, opts, runPath)
	if err != nil {
		return err
	}

	var proxy *sdk.PolicyProxy
	if isPolicy {
		proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout)
		if err != nil {
			return fmt.Errorf("could not start policy pack proxy: %w", err)
		}
		cfg, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("could not get stack configuration: %w", err)
		}
		if cfg != nil {
			add := func(k, v string) {
				if v != "" {
					env = append(env, k+"="+v)
				}
			}
			add("PULUMI_NODEJS_ORGANIZATION", cfg.GetOrganization())
			add("PULUMI_NODEJS_PROJECT", cfg.GetProject())
			add("PULUMI_NODEJS_STACK", cfg.GetStack())
			add("PULUMI_NODEJS_DRY_RUN", fmt.Sprintf("%t", cfg.GetDryRun()))
			if cfg.GetConfig() != nil {
				b, err := json.Marshal(cfg.GetConfig())
				if err != nil {
					return fmt.Errorf("could not marshal stack configuration: %w", err)
				}
				add(envConfig, string(b))
			}
		}
	}

	cmd := exec.CommandContext(ctx, nodeBin, args...)
	// Node policy packs always ran in the pack's directory; other plugins in the caller's.
	if isPolicy {
		cmd.Dir = req.GetInfo().GetProgramDirectory()
	} else {
		cmd.Dir = req.GetPwd()
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr

	run := func() error {
		if err := cmd.Start(); err != nil {
			return err
		}
		if proxy != nil {
			return proxy.Attach(ctx, cmd)
		}
		return cmd.Wait()
	}
	if err := run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if st, ok := ee.Sys().(syscall.WaitStatus); ok {
				return fmt.Errorf("Program exited with non-zero exit code: %d", st.ExitStatus())
			}
			return fmt.Errorf("Program exited unexpectedly: %w", ee)
		}
		if proxy != nil {
			return fmt.Errorf("could not attach policy pack proxy: %w", err)
		}
		return fmt.Errorf("Problem executing plugin program (could not run language executor): %w", err)
	}
	return closer.Close()
}

// InstallDependencies does not install: this repository's dependencies come from `npm ci` at the
// root (package-lock.json). It succeeds when @pulumi/pulumi resolves from the program directory and
// otherwise fails saying what to run.
func (h *Host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer) error {
	closer, stdout, _, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	dir := req.GetInfo().GetProgramDirectory()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("could not find node on the $PATH: %w", err)
	}
	if _, err := locateModule(server.Context(), "@pulumi/pulumi", dir, nodeBin, req.GetIsPlugin()); err != nil {
		return fmt.Errorf("dependencies of %s are not installed, and this stand-in language host does not install them: "+
			"run `npm ci` in the directory of its package-lock.json (for this repository: the repository root), then run pulumi again", dir)
	}
	fmt.Fprintf(stdout, "Dependencies of %s are installed (@pulumi/pulumi resolves); this language host installs nothing itself (use npm ci).\n", dir)
	return closer.Close()
}

// About reports node's path and version and the package manager (npm unless the options say otherwise).
func (h *Host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	opts, err := parseOptions(req.GetInfo().GetOptions().AsMap())
	if err != nil {
		return nil, fmt.Errorf("failed to parse options: %w", err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("could not find executable %q: %w", "node", err)
	}
	pm := opts.packagemanager
	if pm == "auto" {
		pm = "npm"
	}
	resp := &pulumirpc.AboutResponse{Executable: nodeBin, Metadata: map[string]string{"packagemanager": pm}}
	if out, err := exec.CommandContext(ctx, nodeBin, "--version").Output(); err == nil {
		resp.Version = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, pm, "--version").Output(); err == nil {
		resp.Metadata["packagemanagerVersion"] = strings.TrimSpace(string(out))
	}
	return resp, nil
}

// GetProgramDependencies lists the installed packages (`npm ls --json`, direct or transitive).
func (h *Host) GetProgramDependencies(ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	deps, err := npmDependencies(ctx, req.GetInfo().GetProgramDirectory(), req.GetTransitiveDependencies())
	if err != nil {
		return nil, fmt.Errorf("failed to get node dependencies: %w", err)
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

type npmTree struct {
	Version      string             `json:"version"`
	Dependencies map[string]npmTree `json:"dependencies"`
}

func npmDependencies(ctx context.Context, dir string, transitive bool) ([]*pulumirpc.DependencyInfo, error) {
	args := []string{"ls", "--json"}
	if transitive {
		args = append(args, "--all")
	}
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if len(out) == 0 && err != nil {
		return nil, err
	}
	var tree npmTree
	if err := json.Unmarshal(out, &tree); err != nil {
		return nil, fmt.Errorf("parsing `npm ls --json` in %s: %w", dir, err)
	}
	var deps []*pulumirpc.DependencyInfo
	var walk func(map[string]npmTree)
	walk = func(m map[string]npmTree) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			deps = append(deps, &pulumirpc.DependencyInfo{Name: n, Version: m[n].Version})
			if transitive {
				walk(m[n].Dependencies)
			}
		}
	}
	walk(tree.Dependencies)
	return deps, nil
}

// RuntimeOptionsPrompts: the packagemanager prompt `pulumi new` shows when the option is unset.
func (h *Host) RuntimeOptionsPrompts(_ context.Context, req *pulumirpc.RuntimeOptionsRequest) (*pulumirpc.RuntimeOptionsResponse, error) {
	if _, ok := req.GetInfo().GetOptions().AsMap()["packagemanager"]; ok {
		return &pulumirpc.RuntimeOptionsResponse{}, nil
	}
	return &pulumirpc.RuntimeOptionsResponse{Prompts: []*pulumirpc.RuntimeOptionPrompt{{
		Key:         "packagemanager",
		Description: "The package manager to use for installing dependencies",
		PromptType:  pulumirpc.RuntimeOptionPrompt_STRING,
		Choices: []*pulumirpc.RuntimeOptionPrompt_RuntimeOptionValue{
			{PromptType: pulumirpc.RuntimeOptionPrompt_STRING, StringValue: "npm"},
			{PromptType: pulumirpc.RuntimeOptionPrompt_STRING, StringValue: "pnpm"},
			{PromptType: pulumirpc.RuntimeOptionPrompt_STRING, StringValue: "yarn"},
			{PromptType: pulumirpc.RuntimeOptionPrompt_STRING, StringValue: "bun"},
		},
		Default: &pulumirpc.RuntimeOptionPrompt_RuntimeOptionValue{PromptType: pulumirpc.RuntimeOptionPrompt_STRING, StringValue: "npm"},
	}}}, nil
}

func (h *Host) Template(context.Context, *pulumirpc.TemplateRequest) (*pulumirpc.TemplateResponse, error) {
	return &pulumirpc.TemplateResponse{}, nil
}

// Cancel ends running programs (SIGINT, then a kill after 5 s).
func (h *Host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancelFunc()
	return &emptypb.Empty{}, nil
}

var _ pulumirpc.LanguageRuntimeServer = (*Host)(nil)
