// Command conformance launches dist/vault-plugin-ts the way Vault does — through
// HashiCorp's go-plugin client with AutoMTLS and a stripped environment — and drives
// it over the real wire protocol. Each check prints "ok - name" or "FAIL - name: why";
// the run ends with "N passed, M failed" and exits non-zero on any failure.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

const (
	databaseCookieKey   = "VAULT_DATABASE_PLUGIN"
	databaseCookieValue = "926a0820-aea2-be28-51d6-83cdf00e8edb"
	backendCookieKey    = "VAULT_BACKEND_PLUGIN"
	backendCookieValue  = "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
)

var passed, failed int

func check(name string, fn func() error) bool {
	start := time.Now()
	err := fn()
	if err != nil {
		failed++
		fmt.Printf("FAIL - %s: %v\n", name, err)
		return false
	}
	passed++
	fmt.Printf("ok - %s (%s)\n", name, time.Since(start).Round(time.Millisecond))
	return true
}

// connPlugin hands back the raw *grpc.ClientConn so checks can use any service on it.
type connPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (connPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (connPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &session{conn: c, broker: b}, nil
}

type session struct {
	conn   *grpc.ClientConn
	broker *plugin.GRPCBroker
}

// syncBuffer collects what the go-plugin client logs (including the plugin's re-emitted stderr).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuffer) String() string             { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type launched struct {
	client  *plugin.Client
	session *session
	logs    *syncBuffer
}

type launchOpts struct {
	cookieKey, cookieValue string
	versions               []int
	pluginName             string
	env                    []string
}

// extraEnv: CONFORMANCE_EXTRA_ENV, space-separated NAME=value pairs given to every plugin
// the host starts (e.g. VAULT_PLUGIN_TS_HTTP2=js); read before main clears the environment.
var extraEnv = strings.Fields(os.Getenv("CONFORMANCE_EXTRA_ENV"))

// launch starts the executable as Vault does: exec with only Vault's variables (the
// host cleared its own environment at start, and go-plugin appends os.Environ()).
func launch(exe string, o launchOpts) (*launched, error) {
	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Trace, Output: io.MultiWriter(logs), JSONFormat: true})
	sets := map[int]plugin.PluginSet{}
	for _, v := range o.versions {
		sets[v] = plugin.PluginSet{o.pluginName: connPlugin{}}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append([]string{"VAULT_VERSION=1.15.0"}, o.env...), extraEnv...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  plugin.HandshakeConfig{ProtocolVersion: uint(o.versions[0]), MagicCookieKey: o.cookieKey, MagicCookieValue: o.cookieValue},
		VersionedPlugins: sets,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           logger,
		StartTimeout:     10 * time.Second,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("go-plugin client: %v\n%s", err, logs.String())
	}
	raw, err := rpc.Dispense(o.pluginName)
	if err != nil {
		client.Kill()
		return nil, err
	}
	return &launched{client: client, session: raw.(*session), logs: logs}, nil
}

func launchDatabase(exe string, versions []int, env ...string) (*launched, error) {
	return launch(exe, launchOpts{databaseCookieKey, databaseCookieValue, versions, "database", env})
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: conformance <runtime|database|backend|orphan|demo> /abs/path/to/vault-plugin-ts [args]")
		os.Exit(2)
	}
	scenario, exe, args := os.Args[1], os.Args[2], os.Args[3:]
	// Vault execs plugins with its own variables only: no PATH, no HOME.
	os.Clearenv()
	switch scenario {
	case "runtime":
		runtimeChecks(exe)
	case "database":
		databaseChecks(exe, args)
	case "backend":
		backendChecks(exe)
	case "orphan":
		orphan(exe)
		return
	case "demo":
		demo(exe)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", scenario)
		os.Exit(2)
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func contains(hay, needle string) error {
	if !strings.Contains(hay, needle) {
		return fmt.Errorf("expected %q in:\n%s", needle, hay)
	}
	return nil
}
