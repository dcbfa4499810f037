// Package command is a stand-in for the `command` resource provider (pulumi-command v1.2.1), for
// `command:local:Command` and the `command:local:run` function: the Go module of the real provider
// is not served by this machine's Go module proxy. The behaviour it copies is that of v1.2.1 built
// on pulumi-go-provider's infer layer: which inputs exist and their types, which changes replace,
// what a preview shows as unknown, and how the command is run.
package command

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Input property names of command:local:Command, as the v1.2.1 schema has them.
const (
	keyTriggers               = "triggers"
	keyCreate                 = "create"
	keyUpdate                 = "update"
	keyDelete                 = "delete"
	keyStdin                  = "stdin"
	keyLogging                = "logging"
	keyInterpreter            = "interpreter"
	keyDir                    = "dir"
	keyEnvironment            = "environment"
	keyAssetPaths             = "assetPaths"
	keyArchivePaths           = "archivePaths"
	keyAddPreviousOutputInEnv = "addPreviousOutputInEnv"
	keyCommand                = "command" // the run function's only required input

	keyStdout  = "stdout"
	keyStderr  = "stderr"
	keyAssets  = "assets"
	keyArchive = "archive"
)

type kind int

const (
	kindString kind = iota
	kindStringArray
	kindAnyArray
	kindStringMap
	kindBool
	kindLogging
)

// commandInputs are the inputs of command:local:Command with their types (common.ResourceInputs plus
// local.BaseInputs upstream). `triggers` is the only replaceOnChanges property.
var commandInputs = map[string]kind{
	keyTriggers:               kindAnyArray,
	keyCreate:                 kindString,
	keyUpdate:                 kindString,
	keyDelete:                 kindString,
	keyStdin:                  kindString,
	keyLogging:                kindLogging,
	keyInterpreter:            kindStringArray,
	keyDir:                    kindString,
	keyEnvironment:            kindStringMap,
	keyAssetPaths:             kindStringArray,
	keyArchivePaths:           kindStringArray,
	keyAddPreviousOutputInEnv: kindBool,
}

// runInputs are the inputs of the command:local:run function.
var runInputs = func() map[string]kind {
	m := map[string]kind{keyCommand: kindString}
	for k, v := range commandInputs {
		switch k {
		case keyTriggers, keyCreate, keyUpdate, keyDelete:
		default:
			m[k] = v
		}
	}
	return m
}()

// loggingValues are the Logging enum of v1.2.1.
var loggingValues = map[string]bool{"stdout": true, "stderr": true, "stdoutAndStderr": true, "none": true}

// plain strips secret and known-output wrappers; known is false for an unknown value anywhere on
// the way down.
func plain(v resource.PropertyValue) (resource.PropertyValue, bool) {
	for {
		switch {
		case v.IsComputed():
			return v, false
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			o := v.OutputValue()
			if !o.Known {
				return v, false
			}
			v = o.Element
		default:
			return v, true
		}
	}
}

// checkTypes returns a failure for each known input whose type is wrong, and for each property the
// resource does not have (upstream decodes into a struct and reports such mapping errors the same way).
func checkTypes(m resource.PropertyMap, schema map[string]kind, required ...string) []*pulumirpc.CheckFailure {
	var failures []*pulumirpc.CheckFailure
	fail := func(k, reason string) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: k, Reason: reason})
	}
	for _, r := range required {
		if v, ok := m[resource.PropertyKey(r)]; !ok || v.IsNull() {
			fail(r, fmt.Sprintf("Missing required field '%s' on '%s'", r, "inputs"))
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		want, ok := schema[k]
		if !ok {
			fail(k, fmt.Sprintf("Unrecognized field '%s'", k))
			continue
		}
		v, known := plain(m[resource.PropertyKey(k)])
		if !known || v.IsNull() {
			continue
		}
		if reason := typeError(v, want); reason != "" {
			fail(k, fmt.Sprintf("%s: %s", k, reason))
		}
	}
	return failures
}

func typeError(v resource.PropertyValue, want kind) string {
	stringElems := func(vs []resource.PropertyValue) string {
		for i, e := range vs {
			if e, known := plain(e); known && !e.IsString() {
				return fmt.Sprintf("element %d: expected a string, got %s", i, e.TypeString())
			}
		}
		return ""
	}
	switch want {
	case kindString:
		if !v.IsString() {
			return "expected a string, got " + v.TypeString()
		}
	case kindLogging:
		if !v.IsString() {
			return "expected a string, got " + v.TypeString()
		}
		if !loggingValues[v.StringValue()] {
			return fmt.Sprintf("got %q; allowed: stdout, stderr, stdoutAndStderr, none", v.StringValue())
		}
	case kindBool:
		if !v.IsBool() {
			return "expected a bool, got " + v.TypeString()
		}
	case kindAnyArray:
		if !v.IsArray() {
			return "expected an array, got " + v.TypeString()
		}
	case kindStringArray:
		if !v.IsArray() {
			return "expected an array of strings, got " + v.TypeString()
		}
		return stringElems(v.ArrayValue())
	case kindStringMap:
		if !v.IsObject() {
			return "expected a map of strings, got " + v.TypeString()
		}
		obj := v.ObjectValue()
		vals := make([]resource.PropertyValue, 0, len(obj))
		for _, k := range obj.StableKeys() {
			vals = append(vals, obj[k])
		}
		return stringElems(vals)
	}
	return ""
}

// runSpec is what running a command needs, decoded from known inputs.
type runSpec struct {
	Stdin                  *string
	Logging                *string
	Interpreter            []string
	Dir                    *string
	Environment            map[string]string
	AssetPaths             *[]string
	ArchivePaths           *[]string
	AddPreviousOutputInEnv *bool
}

// knownInput returns the input at key with its secret wrapper removed; present is false when it is
// absent or null. An unknown input is an error: a command cannot run with it.
func knownInput(m resource.PropertyMap, key string) (v resource.PropertyValue, present bool, err error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		return v, false, nil
	}
	v, known := plain(v)
	if !known {
		return v, false, fmt.Errorf("input %q is unknown; it must be known to run the command", key)
	}
	return v, true, nil
}

// decodeString returns the string at key, nil when absent or null.
func decodeString(m resource.PropertyMap, key string) (*string, error) {
	v, present, err := knownInput(m, key)
	if err != nil || !present {
		return nil, err
	}
	if !v.IsString() {
		return nil, fmt.Errorf("input %q: expected a string, got %s", key, v.TypeString())
	}
	s := v.StringValue()
	return &s, nil
}

func decodeStrings(m resource.PropertyMap, key string) (*[]string, error) {
	v, present, err := knownInput(m, key)
	if err != nil || !present {
		return nil, err
	}
	if !v.IsArray() {
		return nil, fmt.Errorf("input %q: expected an array of strings, got %s", key, v.TypeString())
	}
	out := []string{}
	for i, e := range v.ArrayValue() {
		e, known := plain(e)
		if !known || !e.IsString() {
			return nil, fmt.Errorf("input %q element %d: expected a known string", key, i)
		}
		out = append(out, e.StringValue())
	}
	return &out, nil
}

func decodeRunSpec(m resource.PropertyMap) (runSpec, error) {
	var s runSpec
	var err error
	if s.Stdin, err = decodeString(m, keyStdin); err != nil {
		return s, err
	}
	if s.Logging, err = decodeString(m, keyLogging); err != nil {
		return s, err
	}
	if s.Dir, err = decodeString(m, keyDir); err != nil {
		return s, err
	}
	interp, err := decodeStrings(m, keyInterpreter)
	if err != nil {
		return s, err
	}
	if interp != nil {
		s.Interpreter = *interp
	}
	if s.AssetPaths, err = decodeStrings(m, keyAssetPaths); err != nil {
		return s, err
	}
	if s.ArchivePaths, err = decodeStrings(m, keyArchivePaths); err != nil {
		return s, err
	}
	if v, ok := m[keyEnvironment]; ok && !v.IsNull() {
		v, known := plain(v)
		if !known || !v.IsObject() {
			return s, fmt.Errorf("input %q: expected a known map of strings", keyEnvironment)
		}
		s.Environment = map[string]string{}
		for k, e := range v.ObjectValue() {
			e, known := plain(e)
			if !known || !e.IsString() {
				return s, fmt.Errorf("input %q key %q: expected a known string", keyEnvironment, k)
			}
			s.Environment[string(k)] = e.StringValue()
		}
	}
	if v, ok := m[keyAddPreviousOutputInEnv]; ok && !v.IsNull() {
		v, known := plain(v)
		if !known || !v.IsBool() {
			return s, fmt.Errorf("input %q: expected a known bool", keyAddPreviousOutputInEnv)
		}
		b := v.BoolValue()
		s.AddPreviousOutputInEnv = &b
	}
	return s, nil
}

// previousOutputs reads stdout and stderr from a resource's state ("" when absent).
func previousOutputs(state resource.PropertyMap) (stdout, stderr string) {
	get := func(k resource.PropertyKey) string {
		if v, known := plain(state[k]); known && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	return get(keyStdout), get(keyStderr)
}
