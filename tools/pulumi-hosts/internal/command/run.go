package command

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"

	"github.com/gobwas/glob"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Environment variable names upstream sets from the previous create/update's outputs.
const (
	envPreviousStdout = "PULUMI_COMMAND_STDOUT"
	envPreviousStderr = "PULUMI_COMMAND_STDERR"
)

// runResult is what one run produced. Assets/Archive are set only when the spec asked for them, so
// an update without assetPaths keeps the assets of the previous run (as upstream does).
type runResult struct {
	Stdout, Stderr string
	Assets         *resource.PropertyMap
	Archive        *resource.Archive
}

// syncWriter serialises the writes of stdout and stderr into one buffer (the error message).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func shouldLogStdout(l *string) bool { return l == nil || *l == "stdout" || *l == "stdoutAndStderr" }
func shouldLogStderr(l *string) bool { return l == nil || *l == "stderr" || *l == "stdoutAndStderr" }

// commandArgv is the interpreter (default `/bin/sh -c`) followed by the command line.
func commandArgv(interpreter []string, command string) []string {
	args := []string{"/bin/sh", "-c"}
	if len(interpreter) > 0 {
		args = append([]string{}, interpreter...)
	}
	return append(args, command)
}

// commandEnv is our environment, then `environment` (unordered, as upstream), then the previous
// stdout/stderr unless addPreviousOutputInEnv is false.
func commandEnv(base []string, spec runSpec, prevStdout, prevStderr string) []string {
	env := append([]string{}, base...)
	for k, v := range spec.Environment {
		env = append(env, fmt.Sprintf("%s=%s", k, v))
	}
	if spec.AddPreviousOutputInEnv == nil || *spec.AddPreviousOutputInEnv {
		if prevStdout != "" {
			env = append(env, fmt.Sprintf("%s=%s", envPreviousStdout, prevStdout))
		}
		if prevStderr != "" {
			env = append(env, fmt.Sprintf("%s=%s", envPreviousStderr, prevStderr))
		}
	}
	return env
}

// runCommand runs command as pulumi-command's local run does: in dir (default: our working
// directory), lines of the logged streams sent to logLine, and on failure an error carrying the
// command and its interleaved stdout and stderr.
func runCommand(ctx context.Context, command string, spec runSpec, prevStdout, prevStderr string,
	logLine func(string),
) (runResult, error) {
	argv := commandArgv(spec.Interpreter, command)
	var stdoutBuf, stderrBuf, combined bytes.Buffer
	combinedW := &syncWriter{w: &combined}
	logR, logW := io.Pipe()

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // running the user's command is the job
	outs := []io.Writer{&stdoutBuf, combinedW}
	if shouldLogStdout(spec.Logging) {
		outs = append(outs, logW)
	}
	errs := []io.Writer{&stderrBuf, combinedW}
	if shouldLogStderr(spec.Logging) {
		errs = append(errs, logW)
	}
	cmd.Stdout = io.MultiWriter(outs...)
	cmd.Stderr = io.MultiWriter(errs...)
	if spec.Dir != nil {
		cmd.Dir = *spec.Dir
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return runResult{}, err
		}
		cmd.Dir = wd
	}
	cmd.Env = commandEnv(os.Environ(), spec, prevStdout, prevStderr)
	if spec.Stdin != nil && *spec.Stdin != "" {
		cmd.Stdin = strings.NewReader(*spec.Stdin)
	}

	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			if logLine != nil {
				logLine(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, logR) // a line over the scanner's limit must not block the command
	}()

	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	_ = logW.Close()
	<-logged
	if err != nil {
		return runResult{}, fmt.Errorf("%w: running %q:\n%s", err, command, combined.String())
	}

	res := runResult{
		Stdout: strings.TrimSuffix(stdoutBuf.String(), "\n"),
		Stderr: strings.TrimSuffix(stderrBuf.String(), "\n"),
	}
	if spec.AssetPaths != nil {
		assets, err := globAssets(cmd.Dir, *spec.AssetPaths)
		if err != nil {
			return runResult{}, err
		}
		m := resource.PropertyMap{}
		for p, a := range assets {
			m[resource.PropertyKey(p)] = resource.NewAssetProperty(a)
		}
		res.Assets = &m
	}
	if spec.ArchivePaths != nil {
		assets, err := globAssets(cmd.Dir, *spec.ArchivePaths)
		if err != nil {
			return runResult{}, err
		}
		members := map[string]any{}
		for p, a := range assets {
			members[p] = a
		}
		archive, err := resource.NewAssetArchive(members)
		if err != nil {
			return runResult{}, err
		}
		res.Archive = archive
	}
	return res, nil
}

// globAssets matches files (not directories) under dir against globs in order; a `!` glob removes
// earlier matches. Paths are slash-separated and relative to dir.
func globAssets(dir string, globs []string) (map[string]*resource.Asset, error) {
	compiled := make([]glob.Glob, len(globs))
	exclude := make([]bool, len(globs))
	for i, g := range globs {
		exclude[i] = strings.HasPrefix(g, "!")
		c, err := glob.Compile(strings.TrimPrefix(g, "!"), '/')
		if err != nil {
			return nil, err
		}
		compiled[i] = c
	}
	assets := map[string]*resource.Asset{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for i, g := range compiled {
			if !g.Match(p) {
				continue
			}
			if exclude[i] {
				delete(assets, p)
				continue
			}
			a, err := resource.NewPathAsset(path.Join(dir, p))
			if err != nil {
				return err
			}
			assets[p] = a
		}
		return nil
	})
	return assets, err
}
