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
	step := func(vault, what string) { fmt.Printf("\n$ %s\n  %s\n", vault, what) }
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

	fmt.Printf("\ndone in %s\n", time.Since(start).Round(time.Millisecond))
}
