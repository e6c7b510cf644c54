package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, COPY, RUN, ...
	Args string
}

// stage is the instructions after one FROM.
type stage struct {
	Base, Name string
	Steps      []instruction
}

// parseDockerfile reads the stages of a Dockerfile (the subset the
// project's Dockerfiles use: no parser directives or heredocs).
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var line strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if strings.HasPrefix(text, "#") { // a comment inside a continued instruction
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(text)
		cmd, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := stage{Base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", file, in.Cmd)
		}
		stages[len(stages)-1].Steps = append(stages[len(stages)-1].Steps, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

var (
	// pinned is an image reference with a full version in its tag
	// (golang:1.26.8-bookworm, debian:12.11-slim), never a moving tag
	// such as latest, bookworm or 2.6.
	pinned = regexp.MustCompile(`^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$`)
	// buildStep is what a build stage may run: Go, nothing from the network
	// but modules.
	buildStep = regexp.MustCompile(`^cd [a-z/]+ && (CGO_ENABLED=[01] )?go (mod download|build .*)$`)
	goLine    = regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`)
	goImage   = regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)-`)
)

// TestDockerfilesBuildFromACleanTree builds each image's binaries the way
// `docker build` does, without an engine: from a copy of the build context
// (the tracked files less .dockerignore), only what the build stage COPYs
// is there, its RUN lines run in order (module download before the sources
// arrive), and every file the final stage copies out of it exists and runs.
// It also checks what the images are made of: pinned base tags, a Go image
// at least as new as go.work asks for, a non-root user, no HAProxy in the
// cloud's image.
func TestDockerfilesBuildFromACleanTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the cloud and home binaries (-short)")
	}
	context := buildContext(t)
	work, err := os.ReadFile(filepath.Join(repoRoot(t), "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wantGo := goLine.FindSubmatch(work)
	for _, name := range []string{"cloud", "home", "haproxy"} {
		t.Run(name, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(repoRoot(t), "deploy", "Dockerfile."+name))
			final := stages[len(stages)-1]
			for _, s := range stages {
				if !pinned.MatchString(s.Base) {
					t.Errorf("FROM %s: pin the tag to a full version", s.Base)
				}
				if m := goImage.FindStringSubmatch(s.Base); m != nil && wantGo != nil && versionLess(m[1], string(wantGo[1])) {
					t.Errorf("FROM %s: go.work asks for Go %s; an older image would download a toolchain", s.Base, wantGo[1])
				}
			}
			user := ""
			for _, in := range final.Steps {
				if in.Cmd == "USER" {
					user = in.Args
				}
				if name == "cloud" && in.Cmd == "RUN" && strings.Contains(in.Args, "install") && strings.Contains(in.Args, " haproxy") {
					t.Errorf("the cloud's image installs HAProxy, which runs in its own container: %s", in.Args)
				}
			}
			if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
				t.Errorf("the image runs as %q, want a non-root USER", user)
			}

			built := map[string]string{} // stage name -> its root directory
			for _, s := range stages[:len(stages)-1] {
				built[s.Name] = runBuildStage(t, context, s)
			}
			copied := 0
			for _, in := range final.Steps {
				from, rest, ok := strings.Cut(in.Args, " ")
				if in.Cmd != "COPY" || !ok || !strings.HasPrefix(from, "--from=") {
					continue
				}
				root, ok := built[strings.TrimPrefix(from, "--from=")]
				if !ok {
					t.Fatalf("COPY %s: no such build stage", in.Args)
				}
				src := strings.Fields(rest)[0]
				bin := filepath.Join(root, filepath.FromSlash(src))
				ctx, cancel := contextWithTimeout(t, time.Minute)
				out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
				cancel()
				if err != nil {
					t.Errorf("%s, copied into the image, does not run: %v\n%s", src, err, out)
				}
				copied++
			}
			if len(stages) > 1 && copied == 0 {
				t.Error("the final stage copies nothing out of the build stage")
			}
		})
	}
}

// runBuildStage runs a build stage's COPY, WORKDIR, ENV and RUN steps in a
// directory standing for the stage's file system, and returns it.
func runBuildStage(t *testing.T, context string, s stage) string {
	t.Helper()
	root := t.TempDir()
	workdir := "/"
	env := os.Environ()
	for _, in := range s.Steps {
		switch in.Cmd {
		case "WORKDIR":
			workdir = path.Join(workdir, in.Args)
			if err := os.MkdirAll(filepath.Join(root, workdir), 0o755); err != nil {
				t.Fatal(err)
			}
		case "ENV":
			k, v, _ := strings.Cut(in.Args, "=")
			env = append(env, k+"="+v)
		case "COPY":
			f := strings.Fields(in.Args)
			if strings.HasPrefix(f[0], "--") {
				t.Fatalf("COPY %s: options are not expected in a build stage", in.Args)
			}
			dst := f[len(f)-1]
			toDir := strings.HasSuffix(dst, "/")
			if !path.IsAbs(dst) {
				dst = path.Join(workdir, dst)
			}
			for _, src := range f[:len(f)-1] {
				if err := copyInto(filepath.Join(context, filepath.FromSlash(src)), filepath.Join(root, filepath.FromSlash(dst)), toDir); err != nil {
					t.Fatalf("COPY %s: %v (is it in the build context? see .dockerignore)", in.Args, err)
				}
			}
		case "RUN":
			if !buildStep.MatchString(in.Args) {
				t.Fatalf("RUN %s: a build stage runs only `cd DIR && go mod download|build ...` here", in.Args)
			}
			// Paths in the commands are relative to WORKDIR, as in the image.
			ctx, cancel := contextWithTimeout(t, 8*time.Minute)
			cmd := exec.CommandContext(ctx, "sh", "-c", in.Args)
			cmd.Dir = filepath.Join(root, workdir)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("RUN %s: %v\n%s", in.Args, err, out)
			}
		default:
			t.Fatalf("%s in a build stage is not handled by this test", in.Cmd)
		}
	}
	if s.Name == "" {
		t.Fatalf("build stage FROM %s has no name", s.Base)
	}
	// The final stage names files by their path in this stage, from /.
	return root
}

// copyInto copies src (a file, or a directory's contents) to dst with
// Docker's COPY rules for the forms the Dockerfiles use.
func copyInto(src, dst string, dstIsDir bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if dstIsDir {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		return copyFile(src, dst, st.Mode())
	}
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		return copyFile(p, filepath.Join(dst, rel), fi.Mode())
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var contextOnce struct {
	sync.Once
	dir string
	err error
}

// buildContext is a copy of what `docker build .` sends from the
// repository root: the work tree's files that git does not ignore (no build
// output), less what .dockerignore excludes.
func buildContext(t *testing.T) string {
	t.Helper()
	contextOnce.Do(func() {
		root := repoRoot(t)
		out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
		if err != nil {
			contextOnce.err = fmt.Errorf("git ls-files: %v (the test needs the repository's git metadata)", err)
			return
		}
		ignore, err := readDockerignore(filepath.Join(root, ".dockerignore"))
		if err != nil {
			contextOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "homeport-build-context-")
		if err != nil {
			contextOnce.err = err
			return
		}
		contextOnce.dir = dir
		for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
			if ignore.excludes(rel) {
				continue
			}
			st, err := os.Lstat(filepath.Join(root, rel))
			if err != nil || !st.Mode().IsRegular() {
				continue // deleted in the work tree, or a link
			}
			if err := copyFile(filepath.Join(root, rel), filepath.Join(dir, rel), st.Mode()); err != nil {
				contextOnce.err = err
				return
			}
		}
	})
	if contextOnce.err != nil {
		t.Fatal(contextOnce.err)
	}
	return contextOnce.dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// versionLess compares dotted decimal versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			fmt.Sscan(bs[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func TestMain(m *testing.M) {
	code := m.Run()
	if contextOnce.dir != "" {
		os.RemoveAll(contextOnce.dir)
	}
	os.Exit(code)
}
