package command

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

const urn = "urn:pulumi:dev::proj::command:local:Command::img-ensure"

func props(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func back(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func strs(vs ...string) resource.PropertyValue {
	arr := make([]resource.PropertyValue, len(vs))
	for i, v := range vs {
		arr[i] = resource.NewProperty(v)
	}
	return resource.NewProperty(arr)
}

func configured(t *testing.T) *Provider {
	t.Helper()
	p := New("")
	if _, err := p.Configure(context.Background(), &pulumirpc.ConfigureRequest{SendsOldInputs: true, SendsOldInputsToDelete: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

func diff(t *testing.T, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	resp, err := configured(t).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Olds: props(t, olds), OldInputs: props(t, olds), News: props(t, news),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestDiffRules(t *testing.T) {
	base := resource.PropertyMap{"create": resource.NewProperty("echo a"), "dir": resource.NewProperty("/tmp"), "triggers": strs("h1", "repo")}
	with := func(k string, v resource.PropertyValue) resource.PropertyMap {
		m := base.Copy()
		m[resource.PropertyKey(k)] = v
		return m
	}
	without := func(k string) resource.PropertyMap {
		m := base.Copy()
		delete(m, resource.PropertyKey(k))
		return m
	}
	cases := []struct {
		name     string
		olds     resource.PropertyMap
		news     resource.PropertyMap
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
		diffs    []string
		detailed map[string]pulumirpc.PropertyDiff_Kind
	}{
		{"unchanged", base, base, pulumirpc.DiffResponse_DIFF_NONE, nil, nil, map[string]pulumirpc.PropertyDiff_Kind{}},
		{"create changes: update", base, with("create", resource.NewProperty("echo b")), pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"create"},
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}},
		{"dir changes: update", base, with("dir", resource.NewProperty("/")), pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"dir"},
			map[string]pulumirpc.PropertyDiff_Kind{"dir": pulumirpc.PropertyDiff_UPDATE}},
		// A changed element is an update at the provider (upstream compares the whole key
		// "triggers[0]" with the replaceOnChanges set); the SDK's replaceOnChanges
		// ["triggers[*]"] makes the engine replace.
		{"trigger element changes", base, with("triggers", strs("h2", "repo")), pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers[0]": pulumirpc.PropertyDiff_UPDATE}},
		{"triggers added: replace", without("triggers"), base, pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_ADD_REPLACE}},
		{"triggers removed: replace", base, without("triggers"), pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"},
			map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_DELETE_REPLACE}},
		{"update added", base, with("update", resource.NewProperty("echo u")), pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"update"},
			map[string]pulumirpc.PropertyDiff_Kind{"update": pulumirpc.PropertyDiff_ADD}},
		{"unknown create", base, with("create", resource.MakeComputed(resource.NewProperty(""))), pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"create"},
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := diff(t, c.olds, c.news)
			if r.Changes != c.changes {
				t.Errorf("changes = %v, want %v", r.Changes, c.changes)
			}
			if !reflect.DeepEqual(r.Replaces, c.replaces) {
				t.Errorf("replaces = %v, want %v", r.Replaces, c.replaces)
			}
			if !reflect.DeepEqual(r.Diffs, c.diffs) {
				t.Errorf("diffs = %v, want %v", r.Diffs, c.diffs)
			}
			got := map[string]pulumirpc.PropertyDiff_Kind{}
			for k, v := range r.DetailedDiff {
				got[k] = v.Kind
			}
			if !reflect.DeepEqual(got, c.detailed) {
				t.Errorf("detailed = %v, want %v", got, c.detailed)
			}
			if !r.HasDetailedDiff {
				t.Error("HasDetailedDiff = false")
			}
		})
	}
}

func TestDiffIgnoreChanges(t *testing.T) {
	olds := resource.PropertyMap{"create": resource.NewProperty("echo a")}
	news := resource.PropertyMap{"create": resource.NewProperty("echo b")}
	r, err := configured(t).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Olds: props(t, olds), OldInputs: props(t, olds), News: props(t, news), IgnoreChanges: []string{"create"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("ignored change still diffs: %v", r)
	}
}

func TestCheckReportsTypeErrors(t *testing.T) {
	news := resource.PropertyMap{
		"create":      resource.NewProperty(1.0),
		"logging":     resource.NewProperty("loud"),
		"environment": resource.NewProperty(resource.PropertyMap{"A": resource.NewProperty(true)}),
		"dir":         resource.MakeComputed(resource.NewProperty("")),
		"bogus":       resource.NewProperty("x"),
	}
	r, err := New("").Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: props(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range r.Failures {
		got[f.Property] = f.Reason
	}
	for _, k := range []string{"create", "logging", "environment", "bogus"} {
		if got[k] == "" {
			t.Errorf("no failure for %s; failures: %v", k, got)
		}
	}
	if _, ok := got["dir"]; ok {
		t.Errorf("an unknown dir must not fail Check: %v", got["dir"])
	}
	if !strings.Contains(got["logging"], "stdoutAndStderr") {
		t.Errorf("logging failure should name the allowed values: %q", got["logging"])
	}

	ok, err := New("").Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: props(t, resource.PropertyMap{
		"create": resource.NewProperty("echo"), "triggers": strs("a"),
	})})
	if err != nil || len(ok.Failures) != 0 {
		t.Fatalf("valid inputs: failures %v, err %v", ok.GetFailures(), err)
	}
}

func create(t *testing.T, p *Provider, inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	t.Helper()
	r, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: props(t, inputs), Preview: preview})
	if err != nil {
		return "", nil, err
	}
	return r.Id, back(t, r.Properties), nil
}

func TestCreatePreviewRunsNothingAndOutputsAreUnknown(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	in := resource.PropertyMap{"create": resource.NewProperty("touch " + marker), "dir": resource.NewProperty(dir)}
	_, out, err := create(t, configured(t), in, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("preview ran the create command")
	}
	if !out["stdout"].IsComputed() || !out["stderr"].IsComputed() {
		t.Fatalf("stdout/stderr in preview: %v %v, want unknown", out["stdout"], out["stderr"])
	}
	if out["create"].StringValue() != "touch "+marker || out["dir"].StringValue() != dir {
		t.Fatalf("inputs are not mirrored: %v", out)
	}
}

func TestCreateRunsInDirWithEnvironment(t *testing.T) {
	dir := t.TempDir()
	in := resource.PropertyMap{
		"create":      resource.NewProperty(`printf 'out:%s:%s\n' "$(pwd)" "$GREETING"; echo warn >&2`),
		"dir":         resource.NewProperty(dir),
		"environment": resource.NewProperty(resource.PropertyMap{"GREETING": resource.NewProperty("hi")}),
		"triggers":    strs("x"),
	}
	id, out, err := create(t, configured(t), in, false)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if got := out["stdout"].StringValue(); got != "out:"+real+":hi" {
		t.Errorf("stdout = %q (the trailing newline is trimmed)", got)
	}
	if got := out["stderr"].StringValue(); got != "warn" {
		t.Errorf("stderr = %q", got)
	}
	if !strings.HasPrefix(id, "img-ensure") || len(id) != len("img-ensure")+8 {
		t.Errorf("id = %q, want the name plus 8 hex characters", id)
	}
	if !out["triggers"].DeepEquals(strs("x")) {
		t.Errorf("triggers not in state: %v", out["triggers"])
	}
}

func TestCreateFailureCarriesOutput(t *testing.T) {
	_, _, err := create(t, configured(t), resource.PropertyMap{"create": resource.NewProperty("echo building; echo 'no space left' >&2; exit 3")}, false)
	if err == nil {
		t.Fatal("a failing command created the resource")
	}
	for _, want := range []string{"exit status 3", `running "echo building; echo 'no space left' >&2; exit 3"`, "building", "no space left"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCreateWithoutCommandSucceeds(t *testing.T) {
	_, out, err := create(t, configured(t), resource.PropertyMap{"triggers": strs("a")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if out["stdout"].StringValue() != "" {
		t.Fatalf("stdout = %v", out["stdout"])
	}
}

func update(t *testing.T, p *Provider, state, news resource.PropertyMap, preview bool) (resource.PropertyMap, error) {
	t.Helper()
	r, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{
		Urn: urn, Id: "x", Olds: props(t, state), News: props(t, news), OldInputs: props(t, state), Preview: preview,
	})
	if err != nil {
		return nil, err
	}
	return back(t, r.Properties), nil
}

func TestUpdateRunsUpdateElseCreateWithPreviousOutputs(t *testing.T) {
	p := configured(t)
	state := resource.PropertyMap{"create": resource.NewProperty("echo one"), "stdout": resource.NewProperty("one"), "stderr": resource.NewProperty("")}

	out, err := update(t, p, state, resource.PropertyMap{"create": resource.NewProperty(`echo "two after $PULUMI_COMMAND_STDOUT"`)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["stdout"].StringValue(); got != "two after one" {
		t.Errorf("no update command: create runs, stdout = %q", got)
	}

	out, err = update(t, p, state, resource.PropertyMap{"create": resource.NewProperty("echo c"), "update": resource.NewProperty("echo u")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["stdout"].StringValue(); got != "u" {
		t.Errorf("update command runs, stdout = %q", got)
	}

	off := resource.PropertyMap{"create": resource.NewProperty(`echo "[$PULUMI_COMMAND_STDOUT]"`), "addPreviousOutputInEnv": resource.NewProperty(false)}
	out, err = update(t, p, state, off, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := out["stdout"].StringValue(); got != "[]" {
		t.Errorf("addPreviousOutputInEnv=false still sets PULUMI_COMMAND_STDOUT: %q", got)
	}
}

func TestUpdatePreviewUnknownOnlyWhenInputsChange(t *testing.T) {
	p := configured(t)
	state := resource.PropertyMap{"create": resource.NewProperty("echo one"), "dir": resource.NewProperty("/"), "stdout": resource.NewProperty("one"), "stderr": resource.NewProperty("")}

	same, err := update(t, p, state, resource.PropertyMap{"create": resource.NewProperty("echo one"), "dir": resource.NewProperty("/")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if same["stdout"].IsComputed() || same["stdout"].StringValue() != "one" {
		t.Errorf("unchanged inputs: stdout = %v, want the old 'one'", same["stdout"])
	}

	changed, err := update(t, p, state, resource.PropertyMap{"create": resource.NewProperty("echo two"), "dir": resource.NewProperty("/")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !changed["stdout"].IsComputed() || !changed["stderr"].IsComputed() {
		t.Errorf("changed create: stdout = %v stderr = %v, want unknown", changed["stdout"], changed["stderr"])
	}
	if changed["create"].StringValue() != "echo two" {
		t.Errorf("create not mirrored: %v", changed["create"])
	}
}

func TestDeleteRunsDeleteWithPreviousOutputs(t *testing.T) {
	dir := t.TempDir()
	state := resource.PropertyMap{
		"create": resource.NewProperty("echo made"),
		"delete": resource.NewProperty(`echo "$PULUMI_COMMAND_STDOUT" > gone`),
		"dir":    resource.NewProperty(dir),
		"stdout": resource.NewProperty("made"),
		"stderr": resource.NewProperty(""),
	}
	if _, err := configured(t).Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urn, Id: "x", Properties: props(t, state)}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "gone"))
	if err != nil || string(b) != "made\n" {
		t.Fatalf("delete command output file: %q, %v", b, err)
	}

	delete(state, "delete")
	if _, err := configured(t).Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urn, Id: "x", Properties: props(t, state)}); err != nil {
		t.Fatalf("no delete command: %v", err)
	}
}

func TestLoggingSendsLinesAsEphemeralStatus(t *testing.T) {
	p := configured(t)
	var got []string
	rec := &recordingEngine{log: func(r *pulumirpc.LogRequest) {
		if !r.Ephemeral || r.Urn != urn || r.Severity != pulumirpc.LogSeverity_INFO {
			t.Errorf("log request %v: want ephemeral INFO on %s", r, urn)
		}
		got = append(got, r.Message)
	}}
	p.engineAddress = "test"
	p.dialEngine = func(string) (pulumirpc.EngineClient, error) { return rec, nil }
	in := resource.PropertyMap{"create": resource.NewProperty("echo a; echo b >&2"), "logging": resource.NewProperty("stderr")}
	if _, _, err := create(t, p, in, false); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("logging=stderr logged %v, want [b]", got)
	}
}

func TestRunInvoke(t *testing.T) {
	args := resource.PropertyMap{"command": resource.NewProperty("echo ran")}
	r, err := New("").Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: TokenRun, Args: props(t, args)})
	if err != nil {
		t.Fatal(err)
	}
	if got := back(t, r.Return)["stdout"].StringValue(); got != "ran" {
		t.Fatalf("stdout = %q", got)
	}
	r, err = New("").Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: TokenRun, Args: props(t, resource.PropertyMap{})})
	if err != nil || len(r.Failures) != 1 || r.Failures[0].Property != "command" {
		t.Fatalf("missing command: %v %v", r, err)
	}
}

func TestUnknownTypeIsRejected(t *testing.T) {
	_, err := New("").Check(context.Background(), &pulumirpc.CheckRequest{Urn: "urn:pulumi:dev::proj::command:remote:Command::x"})
	if err == nil || !strings.Contains(err.Error(), "command:remote:Command") {
		t.Fatalf("err = %v", err)
	}
}
