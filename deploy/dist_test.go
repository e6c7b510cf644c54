package deploy

import (
	"bufio"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/proto/testnet"
)

// TestDistBuildsTheStaticAgent runs `make dist`'s script into a temporary
// directory: the home agent for every target, built without cgo, each
// binary of the right format and architecture, the Linux ones static (no
// program interpreter, so they run on any distribution, Alpine and a bare
// Raspberry Pi OS included), SHA256SUMS matching, and every Linux one
// running here (arm64 and armv7 under qemu-user).
func TestDistBuildsTheStaticAgent(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("./dist.sh")
	cmd.Env = append(os.Environ(), "DIST_DIR="+out, "JOBS=2")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist.sh: %v\n%s", err, b)
	}
	linux := map[string]elf.Machine{"home-linux-amd64": elf.EM_X86_64, "home-linux-arm64": elf.EM_AARCH64, "home-linux-armv7": elf.EM_ARM}
	for name, machine := range linux {
		f, err := elf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Machine != machine {
			t.Errorf("%s is for %v, want %v", name, f.Machine, machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a program interpreter (dynamically linked): built with cgo", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", name, libs)
		}
		f.Close()
	}
	// What the Go toolchain recorded: no cgo anywhere, ARMv7 for the Pi.
	for _, name := range []string{"home-linux-amd64", "home-linux-arm64", "home-linux-armv7", "home-darwin-arm64", "home-windows-amd64.exe"} {
		info, err := buildinfo.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if settings["CGO_ENABLED"] != "0" {
			t.Errorf("%s: CGO_ENABLED=%q, want 0", name, settings["CGO_ENABLED"])
		}
		if name == "home-linux-armv7" && settings["GOARM"] != "7" {
			t.Errorf("%s: GOARM=%q, want 7", name, settings["GOARM"])
		}
	}
	if f, err := macho.Open(filepath.Join(out, "home-darwin-arm64")); err != nil || f.Cpu != macho.CpuArm64 {
		t.Errorf("home-darwin-arm64: %v %v", f, err)
	}
	if f, err := pe.Open(filepath.Join(out, "home-windows-amd64.exe")); err != nil || f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("home-windows-amd64.exe: %v %v", f, err)
	}
	sums, err := os.Open(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	listed := 0
	for sc := bufio.NewScanner(sums); sc.Scan(); listed++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		b, err := os.ReadFile(filepath.Join(out, name))
		h := sha256.Sum256(b)
		if !ok || err != nil || hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS line %q does not match the file (%v)", sc.Text(), err)
		}
	}
	if listed != 5 {
		t.Errorf("SHA256SUMS lists %d files, want the 5 binaries", listed)
	}
	// The static binary runs here and reads a profile's forwards (no
	// database engine needed: a cgo-less build of the SQLite store used to
	// fail here).
	profile := t.TempDir()
	home := filepath.Join(out, "home-linux-amd64")
	if b, err := exec.Command(home, "keygen", "--output", filepath.Join(profile, "id_ed25519")).CombinedOutput(); err != nil {
		t.Fatalf("home keygen: %v\n%s", err, b)
	}
	cfg := `version: 1
name: dist
cloud:
  url: http://127.0.0.1:8000
  home: abcdefgh
  ssh: {host: 127.0.0.1, port: 8022, user: abcdefgh, host_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvGW3Ju0VYnT6o4xBDpVZb5hCuoE4oSy6QOOy0Jy5Yo}
key: id_ed25519
certs_dir: certs
console: {listen: 127.0.0.1:8001}
forwards:
  - {scheme: http, host: web.example.com, target: localhost:3000}
`
	if err := os.WriteFile(filepath.Join(profile, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each Linux build runs: amd64 here, the Raspberry Pi builds under
	// qemu's user-mode emulation (the same static binary a Pi runs).
	for name, runner := range map[string][]string{"home-linux-amd64": nil, "home-linux-arm64": {"qemu-aarch64"}, "home-linux-armv7": {"qemu-arm"}} {
		args := append(runner, filepath.Join(out, name), "--config", profile, "forwards", "list")
		if len(runner) > 0 {
			testnet.RequireCommand(t, runner[0], "run deploy/install-deps.sh (apt-get install qemu-user)")
		}
		b, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(string(b), "http://web.example.com") {
			t.Errorf("the static %s binary does not run: %v\n%s", name, err, b)
		}
	}
}
