package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	bpb "conformance/pb/backend"

	"google.golang.org/grpc"
)

// memStorage is the host side of Vault's Storage service, as Vault serves it over the broker.
type memStorage struct {
	mu   sync.Mutex
	data map[string][]byte
	ops  int
}

func newStorage() *memStorage { return &memStorage{data: map[string][]byte{}} }

func (m *memStorage) List(_ context.Context, a *bpb.StorageListArgs) (*bpb.StorageListReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	seen := map[string]bool{}
	for k := range m.data {
		if !strings.HasPrefix(k, a.Prefix) {
			continue
		}
		rest := strings.TrimPrefix(k, a.Prefix)
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	keys := []string{}
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return &bpb.StorageListReply{Keys: keys}, nil
}
func (m *memStorage) Get(_ context.Context, a *bpb.StorageGetArgs) (*bpb.StorageGetReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	v, ok := m.data[a.Key]
	if !ok {
		return &bpb.StorageGetReply{}, nil
	}
	return &bpb.StorageGetReply{Entry: &bpb.StorageEntry{Key: a.Key, Value: v}}, nil
}
func (m *memStorage) Put(_ context.Context, a *bpb.StoragePutArgs) (*bpb.StoragePutReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	m.data[a.Entry.Key] = append([]byte(nil), a.Entry.Value...)
	return &bpb.StoragePutReply{}, nil
}
func (m *memStorage) Delete(_ context.Context, a *bpb.StorageDeleteArgs) (*bpb.StorageDeleteReply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	delete(m.data, a.Key)
	return &bpb.StorageDeleteReply{}, nil
}
func (m *memStorage) has(k string) bool { m.mu.Lock(); defer m.mu.Unlock(); _, ok := m.data[k]; return ok }
func (m *memStorage) raw() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for k, v := range m.data {
		b.WriteString(k)
		b.Write(v)
	}
	return b.String()
}

type sysView struct{}

// Vault sends Go time.Duration values: nanoseconds.
func (sysView) DefaultLeaseTTL(context.Context, *bpb.Empty) (*bpb.TTLReply, error) {
	return &bpb.TTLReply{TTL: int64(time.Hour)}, nil
}
func (sysView) MaxLeaseTTL(context.Context, *bpb.Empty) (*bpb.TTLReply, error) {
	return &bpb.TTLReply{TTL: int64(24 * time.Hour)}, nil
}
func (sysView) Tainted(context.Context, *bpb.Empty) (*bpb.TaintedReply, error)     { return &bpb.TaintedReply{}, nil }
func (sysView) LocalMount(context.Context, *bpb.Empty) (*bpb.LocalMountReply, error) {
	return &bpb.LocalMountReply{}, nil
}

// mount does what Vault does when it mounts a plugin: serve Storage + SystemView on a
// new broker id, then call Setup with that id.
func mount(l *launched, id string, store *memStorage) error { return mountEngine(l, id, store, nil) }

func mountEngine(l *launched, id string, store *memStorage, config map[string]string) error {
	if config == nil {
		config = map[string]string{}
	}
	brokerID := l.session.broker.NextId()
	go l.session.broker.AcceptAndServe(brokerID, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		bpb.RegisterStorageServer(s, store)
		bpb.RegisterSystemViewServer(s, sysView{})
		return s
	})
	r, err := bpb.NewBackendClient(l.session.conn).Setup(mx(id), &bpb.SetupArgs{BrokerId: brokerID, Config: config, BackendUUID: id})
	if err != nil {
		return err
	}
	if r.Err != "" {
		return errors.New(r.Err)
	}
	return nil
}

type reply struct {
	data     map[string]interface{}
	errMsg   string // data.error (HTTP 400)
	pbErr    *bpb.ProtoError
	warnings []string
}

func request(l *launched, id, op, path string, data map[string]interface{}) (reply, error) {
	body, _ := json.Marshal(data)
	r, err := bpb.NewBackendClient(l.session.conn).HandleRequest(mx(id), &bpb.HandleRequestArgs{Request: &bpb.Request{Operation: op, Path: path, Data: string(body), MountPoint: "transit/"}})
	if err != nil {
		return reply{}, err
	}
	out := reply{pbErr: r.Err}
	if r.Response != nil {
		out.warnings = r.Response.Warnings
	}
	if r.Response != nil && r.Response.Data != "" {
		json.Unmarshal([]byte(r.Response.Data), &out.data)
		if e, ok := out.data["error"].(string); ok {
			out.errMsg = e
		}
	}
	return out, nil
}

func must(l *launched, id, op, path string, data map[string]interface{}) (map[string]interface{}, error) {
	r, err := request(l, id, op, path, data)
	if err != nil {
		return nil, err
	}
	if r.errMsg != "" {
		return nil, fmt.Errorf("%s %s: 400 %s", op, path, r.errMsg)
	}
	if r.pbErr != nil {
		return nil, fmt.Errorf("%s %s: error type %d: %s", op, path, r.pbErr.ErrType, r.pbErr.ErrMsg)
	}
	return r.data, nil
}

var hsmEnv = os.Getenv("CONFORMANCE_HSM")
var kmsEnv = os.Getenv("CONFORMANCE_KMS")

// pluginEnv: operator settings (a JSON object of VAULT_PLUGIN_* variables) the host passes
// to the plugin, as an operator does with `vault plugin register -env`.
var pluginEnv = os.Getenv("CONFORMANCE_PLUGIN_ENV")

// secrets holds every secret configured during the backend scenario, for the log scan.
var secrets []string

func secretValues(cfg map[string]interface{}) []string {
	out := []string{}
	for _, k := range []string{"secret_key", "client_secret", "pin"} {
		if v, ok := cfg[k].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// decryptsTo decrypts a transit ciphertext and compares the plaintext.
func decryptsTo(l *launched, mount, key, ct, aad, want string) error {
	d, err := must(l, mount, "update", "decrypt/"+key, map[string]interface{}{"ciphertext": ct, "associated_data": b64(aad)})
	if err != nil {
		return err
	}
	if d["plaintext"] != b64(want) {
		return fmt.Errorf("plaintext %v", d["plaintext"])
	}
	return nil
}

// signRoundTrip creates a transit key, signs input with it and verifies the signature.
func signRoundTrip(l *launched, mount, key string, keyDef map[string]interface{}, input string) error {
	if _, err := must(l, mount, "create", "keys/"+key, keyDef); err != nil {
		return err
	}
	s, err := must(l, mount, "update", "sign/"+key, map[string]interface{}{"input": b64(input)})
	if err != nil {
		return err
	}
	v, err := must(l, mount, "update", "verify/"+key, map[string]interface{}{"input": b64(input), "signature": s["signature"]})
	if err != nil || v["valid"] != true {
		return fmt.Errorf("verify: %v %v", v, err)
	}
	return nil
}

func backendChecks(exe string) {
	var hsm struct{ Conf, Library string }
	json.Unmarshal([]byte(hsmEnv), &hsm)
	env := []string{"VAULT_PLUGIN_LOG_LEVEL=trace"}
	if hsm.Conf != "" {
		env = append(env, "SOFTHSM2_CONF="+hsm.Conf) // as an operator sets with `vault plugin register -env`
	}
	if pluginEnv != "" {
		var settings map[string]string
		if err := json.Unmarshal([]byte(pluginEnv), &settings); err != nil {
			fmt.Fprintf(os.Stderr, "CONFORMANCE_PLUGIN_ENV: %v\n", err)
			os.Exit(2)
		}
		for k, v := range settings {
			env = append(env, k+"="+v)
		}
	}
	var l *launched
	if !check("launch secrets plugin at version 5 (multiplexed backend)", func() error {
		var err error
		l, err = launch(exe, launchOpts{backendCookieKey, backendCookieValue, []int{4, 5}, "backend", env})
		if err != nil {
			return err
		}
		if v := l.client.NegotiatedVersion(); v != 5 {
			return fmt.Errorf("version %d", v)
		}
		return nil
	}) {
		return
	}
	storeA, storeB := newStorage(), newStorage()
	check("Setup dials Vault's Storage over go-plugin's broker; Type is logical", func() error {
		if err := mount(l, "mount-a", storeA); err != nil {
			return err
		}
		if err := mount(l, "mount-b", storeB); err != nil {
			return err
		}
		t, err := bpb.NewBackendClient(l.session.conn).Type(mx("mount-a"), &bpb.Empty{})
		if err != nil {
			return err
		}
		if t.Type != 1 {
			return fmt.Errorf("type %d", t.Type)
		}
		return nil
	})
	var ct string
	check("transit encrypt/decrypt round trip; the key lives in the host's storage", func() error {
		if _, err := must(l, "mount-a", "create", "keys/app", map[string]interface{}{"type": "aes256-gcm96"}); err != nil {
			return err
		}
		if !storeA.has("policy/app") {
			return errors.New("policy/app not written through the broker")
		}
		r, err := must(l, "mount-a", "update", "encrypt/app", map[string]interface{}{"plaintext": b64("hello vault"), "associated_data": b64("ad")})
		if err != nil {
			return err
		}
		ct, _ = r["ciphertext"].(string)
		if !strings.HasPrefix(ct, "vault:v1:") {
			return fmt.Errorf("ciphertext %q", ct)
		}
		return decryptsTo(l, "mount-a", "app", ct, "ad", "hello vault")
	})
	check("bad input is a 400 with a message; unknown paths and operations are Vault's errors", func() error {
		r, err := request(l, "mount-a", "update", "decrypt/app", map[string]interface{}{"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
		if err != nil {
			return err
		}
		if !strings.Contains(r.errMsg, "authentication failed") {
			return fmt.Errorf("want a 400 message, got %+v", r)
		}
		r, _ = request(l, "mount-a", "read", "no/such/path", nil)
		if r.pbErr == nil || r.pbErr.ErrType != 6 {
			return fmt.Errorf("unsupported path: %+v", r.pbErr)
		}
		r, _ = request(l, "mount-a", "delete", "encrypt/app", nil)
		if r.pbErr == nil || r.pbErr.ErrType != 5 {
			return fmt.Errorf("unsupported operation: %+v", r.pbErr)
		}
		return nil
	})
	check("existence check drives create vs update", func() error {
		bc := bpb.NewBackendClient(l.session.conn)
		r, err := bc.HandleExistenceCheck(mx("mount-a"), &bpb.HandleExistenceCheckArgs{Request: &bpb.Request{Operation: "create", Path: "keys/app"}})
		if err != nil {
			return err
		}
		if !r.CheckFound || !r.Exists {
			return fmt.Errorf("keys/app: %+v", r)
		}
		r, _ = bc.HandleExistenceCheck(mx("mount-a"), &bpb.HandleExistenceCheckArgs{Request: &bpb.Request{Operation: "create", Path: "keys/new"}})
		if !r.CheckFound || r.Exists {
			return fmt.Errorf("keys/new: %+v", r)
		}
		return nil
	})
	check("mounts are isolated: mount-b neither sees nor decrypts mount-a's key", func() error {
		r, _ := request(l, "mount-b", "update", "decrypt/app", map[string]interface{}{"ciphertext": ct})
		if !strings.Contains(r.errMsg, "not found") {
			return fmt.Errorf("mount-b: %+v", r)
		}
		if storeB.has("policy/app") {
			return errors.New("mount-a's key written to mount-b's storage")
		}
		return nil
	})
	check("sign and verify with an ECDSA key; path-help describes the fields", func() error {
		if err := signRoundTrip(l, "mount-a", "signer", map[string]interface{}{"type": "ecdsa-p256"}, "doc"); err != nil {
			return err
		}
		h, err := must(l, "mount-a", "help", "sign/signer", nil)
		if err != nil {
			return err
		}
		return contains(fmt.Sprint(h["help"]), "marshaling_algorithm")
	})
	if hsm.Conf != "" {
		check("a PKCS#11 managed key (SoftHSM2) works from the executable; transit signs through it", func() error {
			cfg := map[string]interface{}{"library": hsm.Library, "token_label": "conformance", "pin": "4242-hsm-pin", "key_label": "transit-ec", "allow_generate_key": true, "curve": "P256"}
			if _, err := must(l, "mount-a", "update", "managed-keys/pkcs11/hsm", cfg); err != nil {
				return err
			}
			t, err := must(l, "mount-a", "update", "managed-keys/pkcs11/hsm/test/sign", nil)
			if err != nil || t["ok"] != true {
				return fmt.Errorf("test/sign: %v %v", t, err)
			}
			if err := signRoundTrip(l, "mount-a", "hsm-signer", map[string]interface{}{"type": "managed_key", "managed_key_name": "hsm"}, "hsm doc"); err != nil {
				return err
			}
			r, _ := must(l, "mount-a", "read", "managed-keys/pkcs11/hsm", nil)
			if _, leaked := r["pin"]; leaked || strings.Contains(fmt.Sprint(r), "4242-hsm-pin") {
				return errors.New("pin returned on read")
			}
			return nil
		})
	}
	check("managed keys: modules, credential files and ambient credentials only as the operator's settings allow (400s naming them)", func() error {
		refusals := []struct {
			path    string
			cfg     map[string]interface{}
			setting string
		}{
			{"managed-keys/pkcs11/rogue", map[string]interface{}{"library": "/bin/sh", "token_label": "t", "pin": "1", "key_label": "k"}, "PLUGIN_PKCS11_LIBRARIES"},
			{"managed-keys/gcpckms/rogue", map[string]interface{}{"credentials": "/dev/zero", "project": "p", "region": "r", "key_ring": "k", "crypto_key": "c"}, "PLUGIN_CREDENTIAL_FILES"},
			{"managed-keys/awskms/rogue", map[string]interface{}{"kms_key": "alias/x", "endpoint": "http://127.0.0.1:1"}, "PLUGIN_AMBIENT_CREDENTIALS"},
		}
		for _, c := range refusals {
			r, err := request(l, "mount-a", "update", c.path, c.cfg)
			if err != nil {
				return err
			}
			if !strings.Contains(r.errMsg, c.setting) {
				return fmt.Errorf("%s: want a 400 naming %s, got %+v", c.path, c.setting, r)
			}
		}
		return nil
	})
	check("a PKI mount (-options=engine=pki): root, role and issue through the real client; SystemView's max lease TTL caps lifetimes; transit paths are not mounted there", func() error {
		store := newStorage()
		if err := mountEngine(l, "mount-pki", store, map[string]string{"engine": "pki"}); err != nil {
			return err
		}
		// No ttl: the mount's default lease TTL (1h here), as Vault's PKI gives a root.
		root, err := must(l, "mount-pki", "update", "root/generate/internal", map[string]interface{}{"common_name": "Conformance Root"})
		if err != nil {
			return err
		}
		if exp, _ := root["expiration"].(float64); exp > float64(time.Now().Add(time.Hour+time.Minute).Unix()) || exp < float64(time.Now().Add(59*time.Minute).Unix()) {
			return fmt.Errorf("the root did not get the SystemView's default lease TTL (1h): expiration %v", root["expiration"])
		}
		// Leaves may outlive it here (below, one is cut to the mount's 24h max): cut them to the root instead of refusing.
		if _, err := must(l, "mount-pki", "update", "issuer/"+fmt.Sprint(root["issuer_id"]), map[string]interface{}{"leaf_not_after_behavior": "truncate"}); err != nil {
			return err
		}
		if !strings.Contains(fmt.Sprint(root["certificate"]), "BEGIN CERTIFICATE") {
			return errors.New("no certificate")
		}
		if _, err := must(l, "mount-pki", "update", "roles/web", map[string]interface{}{"allowed_domains": "example.com", "allow_subdomains": true}); err != nil {
			return err
		}
		leaf, err := must(l, "mount-pki", "update", "issue/web", map[string]interface{}{"common_name": "www.example.com"})
		if err != nil {
			return err
		}
		if !strings.Contains(fmt.Sprint(leaf["private_key"]), "PRIVATE KEY") || !store.has("pki/issuers/"+fmt.Sprint(root["issuer_id"])) {
			return errors.New("issue did not return a key, or the CA (its issuer) is not in the host's storage")
		}
		// Over the mount's max lease TTL (24h, sent as Vault does in nanoseconds): cut to it with Vault's warning
		// (and then to the root's end).
		over, _ := request(l, "mount-pki", "update", "issue/web", map[string]interface{}{"common_name": "www.example.com", "ttl": "48h"})
		exp, _ := over.data["expiration"].(float64)
		if over.errMsg != "" || !strings.Contains(strings.Join(over.warnings, " "), `TTL "48h0m0s" is longer than permitted maxTTL "24h0m0s", so maxTTL is being used`) ||
			exp > float64(time.Now().Add(time.Hour+time.Minute).Unix()) {
			return fmt.Errorf("the SystemView's max lease TTL was not applied: %+v", over)
		}
		r, _ := request(l, "mount-pki", "update", "encrypt/app", map[string]interface{}{"plaintext": b64("x")})
		if r.pbErr == nil || r.pbErr.ErrType != 6 {
			return fmt.Errorf("transit path on a pki mount: %+v", r)
		}
		bad := mountEngine(l, "mount-bad", newStorage(), map[string]string{"engine": "kv"})
		if bad == nil || !strings.Contains(bad.Error(), "unknown engine") {
			return fmt.Errorf("engine=kv accepted: %v", bad)
		}
		return nil
	})
	if kmsEnv != "" {
		check("cloud KMS managed keys (AWS, Google, Azure SDKs loaded from the executable's lazy bundles) pass test/sign", func() error {
			var kms map[string]map[string]interface{}
			if err := json.Unmarshal([]byte(kmsEnv), &kms); err != nil {
				return err
			}
			for _, typ := range []string{"awskms", "gcpckms", "azurekeyvault"} {
				cfg, ok := kms[typ]
				if !ok {
					return fmt.Errorf("no %s config given", typ)
				}
				if _, err := must(l, "mount-a", "update", "managed-keys/"+typ+"/cloud", cfg); err != nil {
					return err
				}
				t, err := must(l, "mount-a", "update", "managed-keys/"+typ+"/cloud/test/sign", nil)
				if err != nil || t["ok"] != true {
					return fmt.Errorf("%s test/sign: %v %v", typ, t, err)
				}
				secrets = append(secrets, secretValues(cfg)...)
			}
			return nil
		})
	}
	check("nothing lives only in the plugin: a restarted process decrypts with the stored key", func() error {
		l.client.Kill()
		prevLogs = l.logs.String()
		var err error
		l, err = launch(exe, launchOpts{backendCookieKey, backendCookieValue, []int{4, 5}, "backend", env})
		if err != nil {
			return err
		}
		if err := mount(l, "mount-a", storeA); err != nil {
			return err
		}
		return decryptsTo(l, "mount-a", "app", ct, "ad", "hello vault")
	})
	check("Cleanup on unmount; no secret in the plugin's logs", func() error {
		if _, err := bpb.NewBackendClient(l.session.conn).Cleanup(mx("mount-a"), &bpb.Empty{}); err != nil {
			return err
		}
		r, _ := request(l, "mount-a", "read", "keys/app", nil)
		if r.pbErr == nil {
			return errors.New("requests still served after Cleanup")
		}
		l.client.Kill()
		all := l.logs.String() + prevLogs
		for _, s := range append(secrets, "4242-hsm-pin", "hello vault", b64("hello vault")) {
			if strings.Contains(all, s) {
				return fmt.Errorf("secret %q found in plugin logs", s)
			}
		}
		return nil
	})
}
