package command

import (
	"context"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Version is the pulumi-command release whose behaviour this provider has, and the version it
// reports, so the engine matches it to @pulumi/command 1.2.1's plugin requirement.
const Version = "1.2.1"

// Type tokens served.
const (
	TokenCommand = "command:local:Command"
	TokenRun     = "command:local:run"
)

// Provider implements pulumirpc.ResourceProviderServer for command:local:Command.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	engineAddress string

	mu         sync.Mutex
	engine     pulumirpc.EngineClient
	oldInputs  bool // the engine sends old inputs to Diff/Update/Delete (Configure told us)
	cancelCtx  context.Context
	cancelFunc context.CancelFunc
	dialEngine func(addr string) (pulumirpc.EngineClient, error)
}

// New returns a provider that logs command output to the engine at engineAddress ("" logs nothing).
func New(engineAddress string) *Provider {
	ctx, cancel := context.WithCancel(context.Background())
	return &Provider{engineAddress: engineAddress, cancelCtx: ctx, cancelFunc: cancel, dialEngine: dialEngine}
}

func dialEngine(addr string) (pulumirpc.EngineClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return pulumirpc.NewEngineClient(conn), nil
}

var marshalOpts = plugin.MarshalOptions{
	KeepUnknowns:     true,
	SkipNulls:        true,
	KeepResources:    true,
	KeepSecrets:      true,
	KeepOutputValues: true,
}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOpts)
}

func tokenOf(urn string) string {
	u, err := resource.ParseURN(urn)
	if err != nil {
		return ""
	}
	return string(u.Type())
}

func nameOf(urn string) string {
	u, err := resource.ParseURN(urn)
	if err != nil {
		return ""
	}
	return u.Name()
}

func unknownType(urn string) error {
	return status.Errorf(codes.InvalidArgument,
		"resource %s: type %q is not served by this provider (stand-in for pulumi-command %s): only %s is",
		urn, tokenOf(urn), Version, TokenCommand)
}

// logLine sends one line of command output as an ephemeral info status on urn, as upstream does.
func (p *Provider) logLine(ctx context.Context, urn string) func(string) {
	return func(msg string) {
		p.mu.Lock()
		if p.engine == nil && p.engineAddress != "" && p.dialEngine != nil {
			if c, err := p.dialEngine(p.engineAddress); err == nil {
				p.engine = c
			}
		}
		engine := p.engine
		p.mu.Unlock()
		if engine == nil {
			return
		}
		_, _ = engine.Log(ctx, &pulumirpc.LogRequest{
			Severity:  pulumirpc.LogSeverity_INFO,
			Message:   strings.ToValidUTF8(msg, "\uFFFD"),
			Urn:       urn,
			Ephemeral: true,
		})
	}
}

func (p *Provider) runCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.cancelCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (p *Provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (p *Provider) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON}, nil
}

// CheckConfig: the provider has no configuration; the inputs come back as given.
func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *Provider) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	return diffInputs(olds, news, nil), nil
}

func (p *Provider) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	p.mu.Lock()
	p.oldInputs = req.GetSendsOldInputs() && req.GetSendsOldInputsToDelete()
	p.mu.Unlock()
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets:   true,
		SupportsPreview: true,
		AcceptResources: true,
		AcceptOutputs:   true,
	}, nil
}

func (p *Provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if tokenOf(req.GetUrn()) != TokenCommand {
		return nil, unknownType(req.GetUrn())
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	failures := checkTypes(news, commandInputs)
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

// commandStates checks that urn is a Command and decodes its state and new inputs, with
// ignoreChanges applied to the new inputs (what Diff and Update both start from).
func commandStates(urn string, olds, news *structpb.Struct, ignore []string) (state, inputs resource.PropertyMap, err error) {
	if tokenOf(urn) != TokenCommand {
		return nil, nil, unknownType(urn)
	}
	if state, err = unmarshal(olds); err != nil {
		return nil, nil, err
	}
	if inputs, err = unmarshal(news); err != nil {
		return nil, nil, err
	}
	return state, applyIgnoreChanges(inputs, state, ignore), nil
}

func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	state, news, err := commandStates(req.GetUrn(), req.GetOlds(), req.GetNews(), req.GetIgnoreChanges())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	sendsOld := p.oldInputs
	p.mu.Unlock()
	var oldInputs resource.PropertyMap
	if sendsOld {
		if oldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	} else {
		oldInputs = fabricatedOldInputs(state, commandInputs)
	}
	return diffInputs(oldInputs, news, map[string]bool{keyTriggers: true}), nil
}

// outputsOf is the state of a Command: its inputs as given plus the outputs of a run.
func outputsOf(inputs resource.PropertyMap, stdout, stderr string, assets *resource.PropertyMap, archive *resource.Archive) resource.PropertyMap {
	out := inputs.Copy()
	out[keyStdout] = resource.NewProperty(stdout)
	out[keyStderr] = resource.NewProperty(stderr)
	if assets != nil {
		out[keyAssets] = resource.NewProperty(*assets)
	}
	if archive != nil {
		out[keyArchive] = resource.NewArchiveProperty(archive)
	}
	return out
}

func (p *Provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if tokenOf(req.GetUrn()) != TokenCommand {
		return nil, unknownType(req.GetUrn())
	}
	inputs, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	id, err := resource.NewUniqueHex(nameOf(req.GetUrn()), 8, 0)
	if err != nil {
		return nil, err
	}
	create, err := (func() (*string, error) {
		if req.GetPreview() {
			return nil, nil
		}
		return decodeString(inputs, keyCreate)
	})()
	if err != nil {
		return nil, err
	}
	out := outputsOf(inputs, "", "", nil, nil)
	if req.GetPreview() {
		// Nothing runs in a preview: outputs that do not mirror an input are unknown.
		markPreviewUnknowns(out, inputs, nil, commandInputs, true)
	} else if create != nil {
		spec, err := decodeRunSpec(inputs)
		if err != nil {
			return nil, err
		}
		rctx, cancel := p.runCtx(ctx)
		defer cancel()
		res, err := runCommand(rctx, *create, spec, "", "", p.logLine(ctx, req.GetUrn()))
		if err != nil {
			return nil, err
		}
		out = outputsOf(inputs, res.Stdout, res.Stderr, res.Assets, res.Archive)
	}
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *Provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	state, news, err := commandStates(req.GetUrn(), req.GetOlds(), req.GetNews(), req.GetIgnoreChanges())
	if err != nil {
		return nil, err
	}

	// The new state starts as the new inputs with the previous run's outputs.
	prevStdout, prevStderr := previousOutputs(state)
	var prevAssets *resource.PropertyMap
	if v, known := plain(state[keyAssets]); known && v.IsObject() {
		m := v.ObjectValue()
		prevAssets = &m
	}
	var prevArchive *resource.Archive
	if v, known := plain(state[keyArchive]); known && v.IsArchive() {
		prevArchive = v.ArchiveValue()
	}
	out := outputsOf(news, prevStdout, prevStderr, prevAssets, prevArchive)

	if req.GetPreview() {
		markPreviewUnknowns(out, news, state, commandInputs, false)
	} else {
		cmd, err := decodeString(news, keyUpdate)
		if err != nil {
			return nil, err
		}
		if cmd == nil { // no update command: create runs again
			if cmd, err = decodeString(news, keyCreate); err != nil {
				return nil, err
			}
		}
		if cmd != nil {
			spec, err := decodeRunSpec(news)
			if err != nil {
				return nil, err
			}
			rctx, cancel := p.runCtx(ctx)
			defer cancel()
			res, err := runCommand(rctx, *cmd, spec, prevStdout, prevStderr, p.logLine(ctx, req.GetUrn()))
			if err != nil {
				return nil, err
			}
			assets, archive := prevAssets, prevArchive
			if res.Assets != nil {
				assets = res.Assets
			}
			if res.Archive != nil {
				archive = res.Archive
			}
			out = outputsOf(news, res.Stdout, res.Stderr, assets, archive)
		}
	}
	props, err := marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *Provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if tokenOf(req.GetUrn()) != TokenCommand {
		return nil, unknownType(req.GetUrn())
	}
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	cmd, err := decodeString(state, keyDelete)
	if err != nil || cmd == nil {
		return &emptypb.Empty{}, err
	}
	spec, err := decodeRunSpec(state)
	if err != nil {
		return nil, err
	}
	prevStdout, prevStderr := previousOutputs(state)
	rctx, cancel := p.runCtx(ctx)
	defer cancel()
	if _, err := runCommand(rctx, *cmd, spec, prevStdout, prevStderr, p.logLine(ctx, req.GetUrn())); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read returns the state as it is (infer's default Read): a command has nothing to refresh from.
func (p *Provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if tokenOf(req.GetUrn()) != TokenCommand {
		return nil, unknownType(req.GetUrn())
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Invoke serves command:local:run: the command runs on every program run, previews included.
func (p *Provider) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	if req.GetTok() != TokenRun {
		return nil, status.Errorf(codes.InvalidArgument,
			"function %q is not served by this provider (stand-in for pulumi-command %s): only %s is", req.GetTok(), Version, TokenRun)
	}
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	if failures := checkTypes(args, runInputs, keyCommand); len(failures) > 0 {
		return &pulumirpc.InvokeResponse{Failures: failures}, nil
	}
	cmd, err := decodeString(args, keyCommand)
	if err != nil {
		return nil, err
	}
	spec, err := decodeRunSpec(args)
	if err != nil {
		return nil, err
	}
	rctx, cancel := p.runCtx(ctx)
	defer cancel()
	res, err := runCommand(rctx, *cmd, spec, "", "", p.logLine(ctx, ""))
	if err != nil {
		return nil, err
	}
	ret, err := marshal(outputsOf(args, res.Stdout, res.Stderr, res.Assets, res.Archive))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}

// Cancel stops running commands (their contexts end, exec kills the process).
func (p *Provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.cancelFunc()
	return &emptypb.Empty{}, nil
}

// Attach is how `pulumi` connects to a provider started by hand (PULUMI_DEBUG_PROVIDERS).
func (p *Provider) Attach(_ context.Context, req *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	p.mu.Lock()
	p.engineAddress = req.GetAddress()
	p.engine = nil
	p.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// GetMapping: no conversion mappings (the engine asks during `pulumi convert` only).
func (p *Provider) GetMapping(context.Context, *pulumirpc.GetMappingRequest) (*pulumirpc.GetMappingResponse, error) {
	return &pulumirpc.GetMappingResponse{}, nil
}

var _ pulumirpc.ResourceProviderServer = (*Provider)(nil)
