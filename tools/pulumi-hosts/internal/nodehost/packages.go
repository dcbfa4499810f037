package nodehost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// packageJSON is the part of a package.json that names a plugin.
type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource         bool   `json:"resource"`
		Name             string `json:"name"`
		Version          string `json:"version"`
		Server           string `json:"server"`
		Parameterization *struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Value   []byte `json:"value"`
		} `json:"parameterization"`
	} `json:"pulumi"`
}

// requiredPackages walks dir deeply, as the real host does: every package.json inside a
// node_modules tree whose "pulumi" section says resource: true is a resource plugin dependency.
// Symlinks are followed once (by real path); nested policy packs are not entered (their plugins
// are not the program's). Errors are collected, and what was found is returned with them.
func requiredPackages(dir string) ([]*pulumirpc.PackageDependency, error) {
	return walkPackages(dir, false, map[string]bool{})
}

func walkPackages(dir string, inNodeModules bool, visited map[string]bool) ([]*pulumirpc.PackageDependency, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("getting full path for plugin dir %s: %w", dir, err)
	}
	if visited[dir] {
		return nil, nil
	}
	visited[dir] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading plugin dir %s: %w", dir, err)
	}
	var found []*pulumirpc.PackageDependency
	var errs []error
	for _, e := range entries {
		cur := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			real, err := filepath.EvalSymlinks(cur)
			if err != nil {
				errs = append(errs, fmt.Errorf("resolving link in plugin dir %s: %w", cur, err))
				continue
			}
			cur = real
			fi, err := os.Stat(cur)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			isDir = fi.IsDir()
		}
		switch {
		case isDir:
			pack, err := workspace.DetectPolicyPackPathAt(cur)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if pack != "" {
				continue
			}
			more, err := walkPackages(cur, inNodeModules || filepath.Base(dir) == "node_modules", visited)
			if err != nil {
				errs = append(errs, err)
			}
			found = append(found, more...)
		case inNodeModules && e.Name() == "package.json":
			dep, err := pluginOfPackageJSON(cur)
			if err != nil {
				errs = append(errs, err)
			} else if dep != nil {
				found = append(found, dep)
			}
		}
	}
	return found, errors.Join(errs...)
}

func pluginOfPackageJSON(path string) (*pulumirpc.PackageDependency, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading package.json %s: %w", path, err)
	}
	var info packageJSON
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("unmarshaling package.json %s: %w", path, err)
	}
	if !info.Pulumi.Resource {
		return nil, nil
	}
	name := info.Pulumi.Name
	if name == "" {
		if info.Name == "" {
			return nil, fmt.Errorf("unmarshaling package.json %s: missing expected \"name\" property", path)
		}
		if !strings.HasPrefix(info.Name, "@pulumi/") {
			return nil, fmt.Errorf("unmarshaling package.json %s: Missing property \"name\" for the third-party plugin '%v' "+
				"inside package.json under the \"pulumi\" section.", path, info.Name)
		}
		name = strings.TrimPrefix(info.Name, "@pulumi/")
	}
	version := info.Pulumi.Version
	if version == "" {
		version = info.Version
		if version == "" {
			return nil, fmt.Errorf("unmarshaling package.json %s: Missing expected \"version\" property", path)
		}
	}
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	dep := &pulumirpc.PackageDependency{Name: name, Kind: "resource", Version: version, Server: info.Pulumi.Server}
	if p := info.Pulumi.Parameterization; p != nil {
		dep.Parameterization = &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
	}
	return dep, nil
}
