package command

import (
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// applyIgnoreChanges sets each ignored path of news to its value in state, where state has one.
func applyIgnoreChanges(news, state resource.PropertyMap, ignore []string) resource.PropertyMap {
	if len(ignore) == 0 {
		return news
	}
	news = news.Copy()
	obj := resource.NewProperty(news)
	stateObj := resource.NewProperty(state)
	for _, p := range ignore {
		path, err := resource.ParsePropertyPath(p)
		if err != nil {
			continue
		}
		if v, ok := path.Get(stateObj); ok {
			path.Set(obj, v)
		}
	}
	return news
}

// fabricatedOldInputs are the input keys of state: what infer uses when the engine does not send
// old inputs.
func fabricatedOldInputs(state resource.PropertyMap, schema map[string]kind) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k := range schema {
		if v, ok := state[resource.PropertyKey(k)]; ok {
			out[resource.PropertyKey(k)] = v
		}
	}
	return out
}

// diffInputs is infer's default Diff for a resource with a custom Update: a detailed diff of old
// inputs against new inputs, where a change whose key is a replaceOnChanges property (`triggers`;
// nested keys like `triggers[0]` are not, upstream compares the whole key) is a replace. The SDK also
// sends replaceOnChanges ["triggers[*]"], so the engine replaces on any element change too.
func diffInputs(oldInputs, news resource.PropertyMap, replaceOnChanges map[string]bool) *pulumirpc.DiffResponse {
	news = news.Copy()
	for k := range news {
		if k == "version" || strings.HasPrefix(string(k), "__") {
			delete(news, k)
		}
	}
	objDiff := oldInputs.Diff(news)
	detailed := plugin.NewDetailedDiffFromObjectDiff(objDiff, false)

	rpcDetailed := map[string]*pulumirpc.PropertyDiff{}
	diffs, replaces := map[string]bool{}, map[string]bool{}
	for k, v := range detailed {
		if replaceOnChanges[k] {
			v.Kind = v.Kind.AsReplace()
		}
		head := k
		if pp, err := resource.ParsePropertyPath(k); err == nil && len(pp) > 0 {
			if s, ok := pp[0].(string); ok {
				head = s
			}
		}
		diffs[head] = true
		if v.Kind.IsReplace() {
			replaces[head] = true
		}
		rpcDetailed[k] = &pulumirpc.PropertyDiff{Kind: rpcKind(v.Kind), InputDiff: v.InputDiff}
	}
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if objDiff.AnyChanges() {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes:         changes,
		DetailedDiff:    rpcDetailed,
		HasDetailedDiff: true,
		Replaces:        sortedKeys(replaces),
		Diffs:           sortedKeys(diffs),
	}
}

func rpcKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE
	}
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isUnknown(v resource.PropertyValue) bool {
	return v.IsComputed() || (v.IsOutput() && !v.OutputValue().Known)
}

func makeUnknown(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsOutput():
		o := v.OutputValue()
		o.Known = false
		return resource.NewProperty(o)
	case v.IsSecret():
		return resource.NewProperty(resource.Output{Element: v.SecretValue().Element, Secret: true})
	case v.IsComputed():
		return v
	default:
		return resource.MakeComputed(v)
	}
}

// markPreviewUnknowns is infer's computedness flow in a preview, where every output depends on every
// input: an output that mirrors an input of the same name and value stays; otherwise on create it is
// unknown, and on update it is unknown when any input is unknown or differs from the old state.
func markPreviewUnknowns(outputs, inputs, oldState resource.PropertyMap, schema map[string]kind, isCreate bool) {
	for k, prop := range outputs {
		if isUnknown(prop) {
			continue
		}
		if in, ok := inputs[k]; ok && in.DeepEquals(prop) {
			continue
		}
		if isCreate {
			outputs[k] = makeUnknown(prop)
			continue
		}
		for dep := range schema {
			d := resource.PropertyKey(dep)
			old, hasOld := oldState[d]
			if isUnknown(inputs[d]) || (hasOld && !inputs[d].DeepEquals(old)) {
				outputs[k] = makeUnknown(prop)
				break
			}
		}
	}
}
