package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	dbpb "conformance/pb/dbplugin"
	mxpb "conformance/pb/multiplexing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
)

func runtimeChecks(exe string) {
	check("refuses to run without the magic cookie", func() error {
		cmd := exec.Command(exe)
		cmd.Env = []string{}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return fmt.Errorf("want exit status 1, got %v", err)
		}
		return contains(string(out), "This binary is a plugin")
	})

	var l *launched
	if !check("handshake accepted over AutoMTLS, highest common version (6) chosen", func() error {
		var err error
		l, err = launchDatabase(exe, []int{5, 6}, "VAULT_PLUGIN_LOG_LEVEL=debug")
		if err != nil {
			return err
		}
		if v := l.client.NegotiatedVersion(); v != 6 {
			return fmt.Errorf("negotiated version %d, want 6", v)
		}
		return nil
	}) {
		return
	}
	ctx := func() context.Context { c, _ := context.WithTimeout(context.Background(), 5*time.Second); return c }

	check("health reports SERVING for service \"plugin\"", func() error {
		resp, err := grpc_health_v1.NewHealthClient(l.session.conn).Check(ctx(), &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
		if err != nil {
			return err
		}
		if resp.Status != grpc_health_v1.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", resp.Status)
		}
		return nil
	})
	check("Database.Type answers over mTLS", func() error {
		resp, err := dbpb.NewDatabaseClient(l.session.conn).Type(ctx(), &dbpb.Empty{})
		if err != nil {
			return err
		}
		if resp.Type != "vault-plugin-ts" {
			return fmt.Errorf("type %q", resp.Type)
		}
		return nil
	})
	check("multiplexing supported at version 6", func() error {
		resp, err := mxpb.NewPluginMultiplexingClient(l.session.conn).MultiplexingSupport(ctx(), &mxpb.MultiplexingSupportRequest{})
		if err != nil {
			return err
		}
		if !resp.Supported {
			return errors.New("supported=false")
		}
		return nil
	})
	check("plugin stderr arrives as hclog JSON at its own level", func() error {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			for _, line := range strings.Split(l.logs.String(), "\n") {
				if strings.Contains(line, `"@message":"plugin serving"`) && strings.Contains(line, `"@level":"debug"`) {
					return nil
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("no debug entry \"plugin serving\" in host log:\n%s", l.logs.String())
	})

	addr := l.client.ReattachConfig().Addr
	check("listens on a unix socket, as go-plugin's own servers do", func() error {
		if addr.Network() != "unix" {
			return fmt.Errorf("handshake network %q, address %q", addr.Network(), addr.String())
		}
		return nil
	})
	check("TLS client without a certificate is refused", func() error {
		return expectRefused(addr, nil)
	})
	check("TLS client with a foreign certificate is refused", func() error {
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		return expectRefused(addr, []tls.Certificate{cert})
	})

	check("Shutdown over the controller ends the process", func() error {
		pid := l.client.ReattachConfig().Pid
		start := time.Now()
		l.client.Kill()
		if d := time.Since(start); d > 1900*time.Millisecond {
			return fmt.Errorf("took %s: the client had to force-kill", d)
		}
		if strings.Contains(l.logs.String(), "failed to exit gracefully") {
			return errors.New("client reports the plugin did not exit gracefully")
		}
		return gone(pid, time.Second)
	})

	check("a client offering only version 5 gets version 5, without multiplexing", func() error {
		l5, err := launchDatabase(exe, []int{5})
		if err != nil {
			return err
		}
		defer l5.client.Kill()
		if v := l5.client.NegotiatedVersion(); v != 5 {
			return fmt.Errorf("negotiated %d", v)
		}
		resp, err := mxpb.NewPluginMultiplexingClient(l5.session.conn).MultiplexingSupport(ctx(), &mxpb.MultiplexingSupportRequest{})
		if err != nil {
			return err
		}
		if resp.Supported {
			return errors.New("supported=true at version 5")
		}
		return nil
	})
}

// expectRefused: a TLS connection with these client certificates must not get a working gRPC
// channel. The plugin must be reachable at addr (a unix socket or TCP, as its handshake said):
// a failure to connect at all would prove nothing.
func expectRefused(addr net.Addr, certs []tls.Certificate) error {
	raw, err := net.DialTimeout(addr.Network(), addr.String(), 2*time.Second)
	if err != nil {
		return fmt.Errorf("plugin not reachable at %s %s: %v", addr.Network(), addr.String(), err)
	}
	raw.Close()
	conf := &tls.Config{InsecureSkipVerify: true, Certificates: certs}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, addr.Network(), addr.String(), conf)
	if err == nil {
		// TLS 1.3 reports a rejected client certificate only after the handshake: read the alert.
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		buf := make([]byte, 64)
		_, err = conn.Read(buf)
		conn.Close()
		if err == nil {
			return errors.New("server accepted the connection and answered")
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return errors.New("server neither refused nor answered")
		}
	}
	// And through a real gRPC client too.
	c, _ := context.WithTimeout(context.Background(), time.Second)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, addr.Network(), addr.String())
	}
	gc, derr := grpc.DialContext(c, "plugin", grpc.WithContextDialer(dialer), grpc.WithTransportCredentials(credentials.NewTLS(conf)), grpc.WithBlock())
	if derr == nil {
		defer gc.Close()
		if _, cerr := grpc_health_v1.NewHealthClient(gc).Check(c, &grpc_health_v1.HealthCheckRequest{Service: "plugin"}); cerr == nil {
			return errors.New("health check succeeded without Vault's certificate")
		}
	}
	return nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// gone waits until pid no longer exists (reaped or never a zombie of ours).
func gone(pid int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("process %d still running", pid)
}

// orphan: start the plugin, report its pid, and exit without shutting it down, as a
// crashed Vault would. The caller checks that the plugin notices and exits.
func orphan(exe string) {
	l, err := launchDatabase(exe, []int{5, 6})
	if err != nil {
		fmt.Println("launch failed:", err)
		os.Exit(1)
	}
	fmt.Printf("pid %d\n", l.client.ReattachConfig().Pid)
	os.Exit(0)
}
