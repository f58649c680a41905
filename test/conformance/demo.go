package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	dbpb "conformance/pb/dbplugin"

	"github.com/golang/protobuf/ptypes"
)

// demo walks through the lifecycle Vault drives, printing a transcript. It is the
// README's first command (via scripts/demo.sh), not a test.
func demo(exe string) {
	var pg pgInfo
	if err := json.Unmarshal([]byte(pgEnv), &pg); err != nil {
		fmt.Println("demo: CONFORMANCE_PG not set")
		os.Exit(2)
	}
	step := func(vault, what string) {
		fmt.Printf("\n$ %s\n", vault)
		if what != "" {
			fmt.Printf("  %s\n", what)
		}
	}
	die := func(err error) {
		if err != nil {
			fmt.Println("  ERROR:", err)
			os.Exit(1)
		}
	}
	genPw := func() string { b := make([]byte, 15); rand.Read(b); return "A1a-" + base64.RawURLEncoding.EncodeToString(b) }
	mask := func(s string) string { return s[:4] + "…(" + fmt.Sprint(len(s)) + " chars)" }

	start := time.Now()
	l, err := launchDatabase(exe, []int{5, 6})
	die(err)
	defer l.client.Kill()
	fmt.Printf("plugin started through go-plugin's client with AutoMTLS in %s (protocol version %d, pid %d)\n",
		time.Since(start).Round(time.Millisecond), l.client.NegotiatedVersion(), l.client.ReattachConfig().Pid)
	db := dbpb.NewDatabaseClient(l.session.conn)

	url := fmt.Sprintf("postgres://{{username}}:{{password}}@%s:%d/%s?sslmode=disable", pg.Host, pg.Port, pg.Database)
	step(fmt.Sprintf("vault write database/config/demo plugin_name=vault-plugin-ts connection_url=%q username=%s password=… password_authentication=scram-sha-256", url, pg.User),
		"Initialize(verify_connection=true): the plugin connects and detects the server")
	_, err = db.Initialize(mx("demo"), &dbpb.InitializeRequest{ConfigData: toStruct(map[string]interface{}{
		"connection_url": url, "username": pg.User, "password": pg.Password, "password_authentication": "scram-sha-256",
	}), VerifyConnection: true})
	die(err)
	fmt.Println("  ok: connection verified")

	stmt := `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT pg_read_all_data TO "{{name}}";`
	step(fmt.Sprintf("vault write database/roles/readonly db_name=demo default_ttl=1h creation_statements=%q", stmt),
		"(Vault keeps roles itself; the statements are sent with each NewUser)")

	step("vault read database/creds/readonly", "NewUser: Vault generates the password, the plugin the username")
	pw := genPw()
	exp, _ := ptypes.TimestampProto(time.Now().Add(time.Hour))
	resp, err := db.NewUser(mx("demo"), &dbpb.NewUserRequest{
		UsernameConfig: &dbpb.UsernameConfig{DisplayName: "token-demo", RoleName: "readonly"},
		Password:       pw, Expiration: exp, Statements: &dbpb.Statements{Commands: []string{stmt}},
	})
	die(err)
	user := resp.Username
	fmt.Printf("  username  %s\n  password  %s\n  lease     1h\n", user, mask(pw))

	step(fmt.Sprintf("psql \"host=%s port=%d user=%s dbname=%s\"", pg.Host, pg.Port, user, pg.Database), "log in with the issued credentials (SCRAM-SHA-256)")
	die(canLogin(pg, user, pw))
	fmt.Println("  ok: logged in")

	step("vault lease renew database/creds/readonly/<lease>", "UpdateUser(expiration): VALID UNTIL moves to the new lease end")
	later, _ := ptypes.TimestampProto(time.Now().Add(24 * time.Hour))
	_, err = db.UpdateUser(mx("demo"), &dbpb.UpdateUserRequest{Username: user, Expiration: &dbpb.ChangeExpiration{NewExpiration: later}})
	die(err)
	var until string
	sqlDB, _ := sqlOpen(pg)
	sqlDB.QueryRow("SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $1", user).Scan(&until)
	sqlDB.Close()
	fmt.Printf("  ok: valid until %s\n", until)

	step("vault write -f database/rotate-role/<static role>", "UpdateUser(password): a new password, the old one stops working")
	pw2 := genPw()
	_, err = db.UpdateUser(mx("demo"), &dbpb.UpdateUserRequest{Username: user, Password: &dbpb.ChangePassword{NewPassword: pw2}})
	die(err)
	die(canLogin(pg, user, pw2))
	if canLogin(pg, user, pw) == nil {
		die(fmt.Errorf("old password still works"))
	}
	fmt.Printf("  ok: new password %s logs in, the old one is refused\n", mask(pw2))

	step("vault lease revoke database/creds/readonly/<lease>", "DeleteUser: sessions ended, grants revoked, role dropped")
	_, err = db.DeleteUser(mx("demo"), &dbpb.DeleteUserRequest{Username: user})
	die(err)
	n, _ := roleCount(pg, user)
	if canLogin(pg, user, pw2) == nil || n != 0 {
		die(fmt.Errorf("user still present"))
	}
	fmt.Println("  ok: login refused, no pg_roles row")

	demoSecrets(exe, step, die)
	fmt.Printf("\ndone in %s\n", time.Since(start).Round(time.Millisecond))
}

// demoSecrets mounts the secrets role twice, as transit and as PKI, the way Vault does:
// Storage served back over go-plugin's broker, then Setup.
func demoSecrets(exe string, step func(string, string), die func(error)) {
	l, err := launch(exe, launchOpts{backendCookieKey, backendCookieValue, []int{4, 5}, "backend", nil})
	die(err)
	defer l.client.Kill()
	fmt.Printf("\nsecrets-engine role started (protocol version %d)\n", l.client.NegotiatedVersion())
	transit, pki := newStorage(), newStorage()
	step("vault secrets enable -path=transit vault-plugin-ts", "Setup: the plugin reaches this mount's storage over the broker")
	die(mountEngine(l, "transit", transit, nil))
	step("vault write transit/keys/orders type=aes256-gcm96", "")
	_, err = must(l, "transit", "create", "keys/orders", map[string]interface{}{"type": "aes256-gcm96"})
	die(err)
	fmt.Printf("  ok: key stored by Vault (%d storage operations so far)\n", transit.ops)
	step(`vault write transit/encrypt/orders plaintext=$(base64 <<< "card 4111") associated_data=$(base64 <<< order-17)`, "")
	enc, err := must(l, "transit", "update", "encrypt/orders", map[string]interface{}{"plaintext": b64("card 4111"), "associated_data": b64("order-17")})
	die(err)
	ct := fmt.Sprint(enc["ciphertext"])
	fmt.Printf("  ciphertext %s…\n", ct[:24])
	step("vault write -f transit/keys/orders/rotate && vault write transit/rewrap/orders ciphertext=…", "")
	_, err = must(l, "transit", "update", "keys/orders/rotate", nil)
	die(err)
	rw, err := must(l, "transit", "update", "rewrap/orders", map[string]interface{}{"ciphertext": ct, "associated_data": b64("order-17")})
	die(err)
	dec, err := must(l, "transit", "update", "decrypt/orders", map[string]interface{}{"ciphertext": rw["ciphertext"], "associated_data": b64("order-17")})
	die(err)
	pt, _ := base64.StdEncoding.DecodeString(fmt.Sprint(dec["plaintext"]))
	fmt.Printf("  rewrapped to %s…, decrypts to %q\n", fmt.Sprint(rw["ciphertext"])[:10], string(pt))
	bad, _ := request(l, "transit", "update", "decrypt/orders", map[string]interface{}{"ciphertext": rw["ciphertext"], "associated_data": b64("order-18")})
	fmt.Printf("  with the wrong associated_data: 400 %q\n", bad.errMsg)

	step("vault secrets enable -path=pki -options=engine=pki vault-plugin-ts", "")
	die(mountEngine(l, "pki", pki, map[string]string{"engine": "pki"}))
	// This host's mount allows 24h at most (its SystemView's max lease TTL); a real mount is tuned
	// first (vault secrets tune -max-lease-ttl=87600h pki) and its root made for years.
	step("vault write pki/root/generate/internal common_name=\"Demo Root\" key_type=ec key_bits=384 ttl=24h", "")
	_, err = must(l, "pki", "update", "root/generate/internal", map[string]interface{}{"common_name": "Demo Root", "key_type": "ec", "key_bits": 384, "ttl": "24h"})
	die(err)
	step("vault write pki/roles/web allowed_domains=example.com allow_subdomains=true max_ttl=72h", "")
	_, err = must(l, "pki", "update", "roles/web", map[string]interface{}{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h"})
	die(err)
	step("vault write pki/issue/web common_name=shop.example.com ttl=12h", "")
	leaf, err := must(l, "pki", "update", "issue/web", map[string]interface{}{"common_name": "shop.example.com", "ttl": "12h"})
	die(err)
	fmt.Printf("  serial %s, private key returned once (%d bytes of PEM)\n", leaf["serial_number"], len(fmt.Sprint(leaf["private_key"])))
	denied, _ := request(l, "pki", "update", "issue/web", map[string]interface{}{"common_name": "shop.evil.com"})
	fmt.Printf("  shop.evil.com: 400 %q\n", denied.errMsg)
	step("vault write pki/revoke serial_number=…", "the CRL is rebuilt and signed")
	_, err = must(l, "pki", "update", "revoke", map[string]interface{}{"serial_number": leaf["serial_number"]})
	die(err)
	crl, err := must(l, "pki", "read", "cert/crl", nil)
	die(err)
	fmt.Printf("  ok: revoked; new CRL of %d bytes (PEM)\n", len(fmt.Sprint(crl["certificate"])))
}
