// compose-validate loads a Compose file with compose-go/v2, the loader that
// Docker Compose v2 itself uses, and fails on anything `docker compose config`
// would reject (JSON-schema violations such as unknown keys or an invalid
// depends_on condition, bad durations, unknown referenced services, volumes
// or networks, ...). It needs no Docker engine.
//
// It is stricter than `docker compose config` in three ways:
//   - every loader warning is an error (e.g. an unset ${VAR} without a
//     default, the obsolete top-level `version:` key);
//   - with -check-build, each service's local build context directory and its
//     Dockerfile must exist;
//   - the same file is validated once per requested profile set;
//   - when a prometheus service mounts its configuration, that configuration
//     must scrape the worker at worker:<DAMPAK_WEB__PORT>, and the worker must
//     listen beyond loopback (DAMPAK_WEB__HOST 0.0.0.0) behind a token.
//
// Usage: compose-validate [-q] [-print] [-check-build] [-profile NAME]... [FILE...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/sirupsen/logrus"
	"go.yaml.in/yaml/v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// warningsAsErrors collects every logrus warning the loader emits.
type warningsAsErrors struct {
	mu       sync.Mutex
	messages []string
}

func (h *warningsAsErrors) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h *warningsAsErrors) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages = append(h.messages, e.Message)
	return nil
}

func main() {
	var profiles multiFlag
	var projectDir string
	quiet := flag.Bool("q", false, "print nothing on success")
	print := flag.Bool("print", false, "print the resolved model as YAML, like `docker compose config`")
	checkBuild := flag.Bool("check-build", false, "require local build contexts and Dockerfiles to exist")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.StringVar(&projectDir, "project-directory", "", "working directory (default: directory of the first file)")
	flag.Parse()

	files := flag.Args()
	if len(files) == 0 {
		files = []string{"docker-compose.yml"}
	}
	if err := run(files, profiles, projectDir, *checkBuild, *quiet, *print); err != nil {
		fmt.Fprintf(os.Stderr, "compose-validate: %v\n", err)
		os.Exit(1)
	}
}

func run(files, profiles []string, projectDir string, checkBuild, quiet, print bool) error {
	hook := &warningsAsErrors{}
	logrus.SetOutput(io.Discard) // reported below, once, as errors
	logrus.AddHook(hook)

	if projectDir == "" {
		projectDir = filepath.Dir(files[0])
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(projectDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	if len(hook.messages) > 0 {
		return fmt.Errorf("warnings treated as errors:\n  %s", strings.Join(hook.messages, "\n  "))
	}
	if len(project.Services) == 0 {
		return errors.New("no services defined")
	}
	if checkBuild {
		if err := checkBuildContexts(project); err != nil {
			return err
		}
	}
	if err := checkMonitoring(project); err != nil {
		return err
	}
	if print {
		out, err := project.MarshalYAML()
		if err != nil {
			return err
		}
		os.Stdout.Write(out)
	}
	if !quiet {
		names := project.ServiceNames()
		fmt.Printf("OK: %s (project %q, profiles %v): %d services: %s\n",
			strings.Join(files, ","), project.Name, profiles, len(names), strings.Join(names, ", "))
	}
	return nil
}

func checkBuildContexts(project *types.Project) error {
	var problems []string
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		ctxDir := svc.Build.Context
		if strings.Contains(ctxDir, "://") || strings.HasPrefix(ctxDir, "git@") {
			continue // remote context
		}
		if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
			problems = append(problems, fmt.Sprintf("service %q: build context %s is not a directory", name, ctxDir))
			continue
		}
		if svc.Build.DockerfileInline != "" {
			continue
		}
		df := svc.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(ctxDir, df)
		}
		if st, err := os.Stat(df); err != nil || st.IsDir() {
			problems = append(problems, fmt.Sprintf("service %q: Dockerfile %s not found", name, df))
			continue
		}
		for _, p := range checkDockerfile(df, ctxDir) {
			problems = append(problems, fmt.Sprintf("service %q: %s", name, p))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	return nil
}

// checkDockerfile parses a Dockerfile with BuildKit's own parser (the one
// `docker build` uses), treats its parse and lint warnings as errors, and
// checks that every local COPY/ADD source exists in the build context.
func checkDockerfile(path, ctxDir string) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", path, err)}
	}
	var problems []string
	for _, w := range res.Warnings {
		problems = append(problems, fmt.Sprintf("%s: %s", path, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", path, line, rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", path, err))
	}
	for _, st := range stages {
		for _, cmd := range st.Commands {
			var srcs []string
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					srcs = c.SourcePaths
				}
			case *instructions.AddCommand:
				srcs = c.SourcePaths
			}
			for _, src := range srcs {
				if strings.Contains(src, "$") || strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
					continue // build-arg expansion or remote source: cannot check here
				}
				matches, _ := filepath.Glob(filepath.Join(ctxDir, strings.TrimPrefix(src, "/")))
				if len(matches) == 0 {
					problems = append(problems, fmt.Sprintf("%s:%d: %s source %q not found in build context %s",
						path, cmd.Location()[0].Start.Line, strings.ToUpper(cmd.Name()), src, ctxDir))
				}
			}
		}
	}
	return problems
}

// checkMonitoring: Prometheus must scrape the worker where the worker listens.
func checkMonitoring(project *types.Project) error {
	prom, ok := project.Services["prometheus"]
	if !ok {
		return nil
	}
	worker, ok := project.Services["worker"]
	if !ok {
		return errors.New("prometheus: no worker service to scrape")
	}
	env := func(name, fallback string) string {
		if v, ok := worker.Environment[name]; ok && v != nil {
			return *v
		}
		return fallback
	}
	var problems []string
	if host := env("DAMPAK_WEB__HOST", "127.0.0.1"); host != "0.0.0.0" {
		problems = append(problems, fmt.Sprintf("worker: DAMPAK_WEB__HOST is %q, so Prometheus cannot reach it (use 0.0.0.0)", host))
	} else if env("DAMPAK_WEB__TOKEN", "") == "" {
		problems = append(problems, "worker: listens on 0.0.0.0 without DAMPAK_WEB__TOKEN")
	}
	want := "worker:" + env("DAMPAK_WEB__PORT", "6066")
	config := ""
	for _, v := range prom.Volumes {
		if v.Target == "/etc/prometheus/prometheus.yml" {
			config = v.Source
		}
	}
	if config == "" {
		problems = append(problems, "prometheus: no configuration mounted at /etc/prometheus/prometheus.yml")
	} else if targets, err := scrapeTargets(config); err != nil {
		problems = append(problems, fmt.Sprintf("prometheus: %v", err))
	} else if !contains(targets, want) {
		problems = append(problems, fmt.Sprintf("prometheus: %s does not scrape %s (targets: %s)", config, want, strings.Join(targets, ", ")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("monitoring:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func scrapeTargets(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			out = append(out, st.Targets...)
		}
	}
	return out, nil
}

func contains(items []string, want string) bool {
	for _, item := range items {
		if item == want {
			return true
		}
	}
	return false
}
