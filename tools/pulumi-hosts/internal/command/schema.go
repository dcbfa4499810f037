package command

import (
	"encoding/json"
)

// schemaJSON is a minimal package schema: the engine asks for one only for tooling (`pulumi package
// get-schema`, import, convert), never for preview or up. Property names and types follow v1.2.1;
// descriptions are left out.
var schemaJSON = func() string {
	str := map[string]any{"type": "string"}
	strs := map[string]any{"type": "array", "items": str}
	base := map[string]any{
		keyStdin:                  str,
		keyLogging:                map[string]any{"$ref": "#/types/command:local:Logging"},
		keyInterpreter:            strs,
		keyDir:                    str,
		keyEnvironment:            map[string]any{"type": "object", "additionalProperties": str},
		keyAssetPaths:             strs,
		keyArchivePaths:           strs,
		keyAddPreviousOutputInEnv: map[string]any{"type": "boolean"},
	}
	outputs := map[string]any{
		keyStdout:  str,
		keyStderr:  str,
		keyAssets:  map[string]any{"type": "object", "additionalProperties": map[string]any{"$ref": "pulumi.json#/Asset"}},
		keyArchive: map[string]any{"$ref": "pulumi.json#/Archive"},
	}
	merge := func(ms ...map[string]any) map[string]any {
		out := map[string]any{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	resourceInputs := map[string]any{
		keyTriggers: map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}, "replaceOnChanges": true},
		keyCreate:   str,
		keyUpdate:   str,
		keyDelete:   str,
	}
	cmdInputs := merge(resourceInputs, base)
	runIn := merge(map[string]any{keyCommand: str}, base)
	s := map[string]any{
		"name":    "command",
		"version": Version,
		"types": map[string]any{
			"command:local:Logging": map[string]any{
				"type": "string",
				"enum": []any{
					map[string]any{"name": "stdout", "value": "stdout"},
					map[string]any{"name": "stderr", "value": "stderr"},
					map[string]any{"name": "stdoutAndStderr", "value": "stdoutAndStderr"},
					map[string]any{"name": "none", "value": "none"},
				},
			},
		},
		"resources": map[string]any{
			TokenCommand: map[string]any{
				"inputProperties": cmdInputs,
				"properties":      merge(cmdInputs, outputs),
				"required":        []string{keyStdout, keyStderr},
			},
		},
		"functions": map[string]any{
			TokenRun: map[string]any{
				"inputs":  map[string]any{"properties": runIn, "required": []string{keyCommand}},
				"outputs": map[string]any{"properties": merge(runIn, outputs), "required": []string{keyCommand, keyStdout, keyStderr}},
			},
		},
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}()
