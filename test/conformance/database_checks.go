package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	dbpb "conformance/pb/dbplugin"

	"github.com/golang/protobuf/ptypes"
	structpb "github.com/golang/protobuf/ptypes/struct"
	_ "github.com/lib/pq"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type pgInfo struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
	Database string `json:"database"`
}

func (p pgInfo) dsn(user, password string) string {
	return fmt.Sprintf("host=%s port=%d user='%s' password='%s' dbname=%s sslmode=disable connect_timeout=5",
		p.Host, p.Port, strings.ReplaceAll(user, "'", `\'`), strings.ReplaceAll(password, "'", `\'`), p.Database)
}

func canLogin(p pgInfo, user, password string) error {
	db, err := sql.Open("postgres", p.dsn(user, password))
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Ping()
}

func adminQuery(p pgInfo, q string, args ...interface{}) (int, error) {
	db, err := sql.Open("postgres", p.dsn(p.User, p.Password))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(q, args...).Scan(&n)
	return n, err
}

func sqlOpen(p pgInfo) (*sql.DB, error) { return sql.Open("postgres", p.dsn(p.User, p.Password)) }

func adminExec(p pgInfo, q string) error {
	db, err := sqlOpen(p)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(q)
	return err
}

func roleCount(p pgInfo, name string) (int, error) {
	return adminQuery(p, "SELECT count(*)::int FROM pg_roles WHERE rolname = $1", name)
}

func toStruct(m map[string]interface{}) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range m {
		switch x := v.(type) {
		case string:
			s.Fields[k] = &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: x}}
		case float64:
			s.Fields[k] = &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: x}}
		case bool:
			s.Fields[k] = &structpb.Value{Kind: &structpb.Value_BoolValue{BoolValue: x}}
		}
	}
	return s
}

// mx returns a context carrying Vault's multiplexing metadata for one database config.
func mx(id string) context.Context {
	ctx, _ := context.WithTimeout(context.Background(), 20*time.Second)
	return metadata.NewOutgoingContext(ctx, metadata.Pairs("multiplex_id", id))
}

func wantCode(err error, code codes.Code) error {
	if err == nil {
		return fmt.Errorf("expected %s, got success", code)
	}
	if s, _ := status.FromError(err); s.Code() != code {
		return fmt.Errorf("expected %s, got %s: %s", code, s.Code(), s.Message())
	}
	return nil
}

var creation = []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`}

func newUserReq(display, role, password string, stmts []string) *dbpb.NewUserRequest {
	exp, _ := ptypes.TimestampProto(time.Now().Add(time.Hour))
	return &dbpb.NewUserRequest{
		UsernameConfig: &dbpb.UsernameConfig{DisplayName: display, RoleName: role},
		Password:       password,
		Expiration:     exp,
		Statements:     &dbpb.Statements{Commands: stmts},
	}
}

func databaseChecks(exe string, _ []string) {
	var pg pgInfo
	if err := json.Unmarshal([]byte(pgEnv), &pg); err != nil || pg.Port == 0 {
		fmt.Println("FAIL - CONFORMANCE_PG must hold the PostgreSQL connection as JSON")
		failed++
		return
	}
	secrets := []string{pg.Password}
	// Trace level, so the secret scan at the end sees every line the plugin can write.
	l, err := launchDatabase(exe, []int{5, 6}, "VAULT_PLUGIN_LOG_LEVEL=trace")
	if !check("launch database plugin at version 6 (multiplexed)", func() error {
		if err != nil {
			return err
		}
		if l.client.NegotiatedVersion() != 6 {
			return fmt.Errorf("version %d", l.client.NegotiatedVersion())
		}
		return nil
	}) {
		return
	}
	db := dbpb.NewDatabaseClient(l.session.conn)
	url := fmt.Sprintf("postgres://{{username}}:{{password}}@%s:%d/%s?sslmode=disable", pg.Host, pg.Port, pg.Database)
	cfgA := map[string]interface{}{"connection_url": url, "username": pg.User, "password": pg.Password, "max_open_connections": float64(3)}
	cfgB := map[string]interface{}{"connection_url": url, "username": pg.User, "password": pg.Password, "username_template": "b-{{random 12 | lowercase}}"}

	check("Initialize with bad input is InvalidArgument and names the problem", func() error {
		_, err := db.Initialize(mx("a"), &dbpb.InitializeRequest{ConfigData: toStruct(map[string]interface{}{"max_open_connections": "lots", "host": "h"}), VerifyConnection: true})
		if e := wantCode(err, codes.InvalidArgument); e != nil {
			return e
		}
		return contains(err.Error(), "max_open_connections")
	})
	check("Initialize with a wrong password fails and does not echo it", func() error {
		wrong := map[string]interface{}{"connection_url": url, "username": pg.User, "password": "Wr0ng-Passw0rd-zz"}
		_, err := db.Initialize(mx("a"), &dbpb.InitializeRequest{ConfigData: toStruct(wrong), VerifyConnection: true})
		if err == nil {
			return errors.New("succeeded")
		}
		if strings.Contains(err.Error(), "Wr0ng-Passw0rd-zz") {
			return fmt.Errorf("password echoed: %v", err)
		}
		return contains(err.Error(), "password authentication failed")
	})
	check("Initialize two configs on one process; the stored config comes back", func() error {
		resp, err := db.Initialize(mx("a"), &dbpb.InitializeRequest{ConfigData: toStruct(cfgA), VerifyConnection: true})
		if err != nil {
			return err
		}
		if got := resp.ConfigData.Fields["connection_url"].GetStringValue(); got != url {
			return fmt.Errorf("config_data.connection_url = %q", got)
		}
		_, err = db.Initialize(mx("b"), &dbpb.InitializeRequest{ConfigData: toStruct(cfgB), VerifyConnection: true})
		return err
	})
	check("a call without multiplex_id is refused", func() error {
		_, err := db.NewUser(context.Background(), newUserReq("t", "r", "Pw-1234567890", creation))
		return wantCode(err, codes.InvalidArgument)
	})

	var userA, pwA = "", "Aa1-" + fmt.Sprint(time.Now().UnixNano())
	check("NewUser issues credentials that log in (SCRAM), with VALID UNTIL set", func() error {
		resp, err := db.NewUser(mx("a"), newUserReq("token-conf", "app", pwA, creation))
		if err != nil {
			return err
		}
		userA = resp.Username
		if !strings.HasPrefix(userA, "v-token-co-app-") {
			return fmt.Errorf("username %q does not follow the default template", userA)
		}
		if err := canLogin(pg, userA, pwA); err != nil {
			return fmt.Errorf("login: %v", err)
		}
		n, err := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname = $1 AND rolvaliduntil > now() + interval '50 minutes'", userA)
		if err != nil || n != 1 {
			return fmt.Errorf("valid until not set (n=%d, err=%v)", n, err)
		}
		return nil
	})
	var userB, pwB = "", "Bb2-" + fmt.Sprint(time.Now().UnixNano())
	check("the second config uses its own username template", func() error {
		resp, err := db.NewUser(mx("b"), newUserReq("token-conf", "app", pwB, creation))
		if err != nil {
			return err
		}
		userB = resp.Username
		if !strings.HasPrefix(userB, "b-") || len(userB) != 14 {
			return fmt.Errorf("username %q", userB)
		}
		return canLogin(pg, userB, pwB)
	})
	check("UpdateUser renews and rotates; the new password logs in, the old does not", func() error {
		later, _ := ptypes.TimestampProto(time.Now().Add(48 * time.Hour))
		if _, err := db.UpdateUser(mx("a"), &dbpb.UpdateUserRequest{Username: userA, Expiration: &dbpb.ChangeExpiration{NewExpiration: later}}); err != nil {
			return err
		}
		n, _ := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname = $1 AND rolvaliduntil > now() + interval '47 hours'", userA)
		if n != 1 {
			return errors.New("renewal did not move VALID UNTIL")
		}
		newPw := "Cc3'quote-" + fmt.Sprint(time.Now().UnixNano())
		secrets = append(secrets, newPw)
		if _, err := db.UpdateUser(mx("a"), &dbpb.UpdateUserRequest{Username: userA, Password: &dbpb.ChangePassword{NewPassword: newPw}}); err != nil {
			return err
		}
		if err := canLogin(pg, userA, newPw); err != nil {
			return fmt.Errorf("new password: %v", err)
		}
		if canLogin(pg, userA, pwA) == nil {
			return errors.New("old password still works")
		}
		return nil
	})
	check("Vault's call deadline bounds the transaction: a timed-out NewUser never commits later", func() error {
		ctx, cancel := context.WithTimeout(mx("a"), time.Second)
		defer cancel()
		_, err := db.NewUser(ctx, newUserReq("slow", "r", "Sl-1234567890", append(creation, "SELECT pg_sleep(3);")))
		if e := wantCode(err, codes.DeadlineExceeded); e != nil {
			return e
		}
		time.Sleep(3500 * time.Millisecond) // past when the statement would have finished
		n, err := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname LIKE 'v-slow-%'")
		if err != nil || n != 0 {
			return fmt.Errorf("%d roles created after the caller gave up (%v)", n, err)
		}
		return nil
	})
	check("UpdateUser with nothing to change is InvalidArgument", func() error {
		_, err := db.UpdateUser(mx("a"), &dbpb.UpdateUserRequest{Username: userA})
		return wantCode(err, codes.InvalidArgument)
	})
	check("a failing second statement leaves no role and no password in the error", func() error {
		pw := "Dd4-secret-" + fmt.Sprint(time.Now().UnixNano())
		secrets = append(secrets, pw)
		_, err := db.NewUser(mx("a"), newUserReq("atomic", "r", pw, append(creation, `GRANT SELECT ON missing_table TO "{{name}}";`)))
		if e := wantCode(err, codes.InvalidArgument); e != nil {
			return e
		}
		if strings.Contains(err.Error(), pw) {
			return errors.New("password in error")
		}
		n, err := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname LIKE 'v-atomic-%'")
		if err != nil || n != 0 {
			return fmt.Errorf("%d roles left (err %v)", n, err)
		}
		return nil
	})
	check("32 concurrent NewUser calls through the real client all succeed", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		names := make(chan string, 32)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := db.NewUser(mx("a"), newUserReq("conc", "r", fmt.Sprintf("Ee5-%d-%d", i, time.Now().UnixNano()), creation))
				if err != nil {
					errs <- err
					return
				}
				names <- r.Username
			}(i)
		}
		wg.Wait()
		close(errs)
		close(names)
		for err := range errs {
			return err
		}
		for n := range names {
			if _, err := db.DeleteUser(mx("a"), &dbpb.DeleteUserRequest{Username: n}); err != nil {
				return err
			}
		}
		n, _ := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname LIKE 'v-conc-%'")
		if n != 0 {
			return fmt.Errorf("%d left after revoke", n)
		}
		return nil
	})
	check("200 concurrent NewUser/DeleteUser pairs: no errors, nothing left, never above max_open_connections", func() error {
		loadURL := fmt.Sprintf("postgres://{{username}}:{{password}}@%s:%d/%s?sslmode=disable&application_name=vpt-load", pg.Host, pg.Port, pg.Database)
		cfg := map[string]interface{}{"connection_url": loadURL, "username": pg.User, "password": pg.Password, "max_open_connections": float64(5)}
		if _, err := db.Initialize(mx("load"), &dbpb.InitializeRequest{ConfigData: toStruct(cfg), VerifyConnection: true}); err != nil {
			return err
		}
		defer db.Close(mx("load"), &dbpb.Empty{})
		stop := make(chan struct{})
		peak := 0
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			sqlDB, err := sqlOpen(pg)
			if err != nil {
				return
			}
			defer sqlDB.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				if sqlDB.QueryRow("SELECT count(*)::int FROM pg_stat_activity WHERE application_name = 'vpt-load'").Scan(&n) == nil && n > peak {
					peak = n
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := db.NewUser(mx("load"), newUserReq("load", "r", fmt.Sprintf("Lp-%d-%d", i, time.Now().UnixNano()), creation))
				if err == nil {
					_, err = db.DeleteUser(mx("load"), &dbpb.DeleteUserRequest{Username: r.Username})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		close(stop)
		<-sampled
		if len(errs) > 0 {
			return fmt.Errorf("%d of 200 pairs failed; first: %v", len(errs), errs[0])
		}
		n, err := adminQuery(pg, "SELECT count(*)::int FROM pg_roles WHERE rolname LIKE 'v-load-%'")
		if err != nil || n != 0 {
			return fmt.Errorf("%d roles left (%v)", n, err)
		}
		if peak > 5 || peak < 2 {
			return fmt.Errorf("peak connections %d (want 2..5)", peak)
		}
		fmt.Printf("    (peak %d connections of max_open_connections=5)\n", peak)
		return nil
	})
	check("Close of one config leaves the other serving", func() error {
		if _, err := db.Close(mx("a"), &dbpb.Empty{}); err != nil {
			return err
		}
		_, err := db.NewUser(mx("a"), newUserReq("t", "r", "Ff6-1234567890", creation))
		if e := wantCode(err, codes.FailedPrecondition); e != nil {
			return e
		}
		resp, err := db.NewUser(mx("b"), newUserReq("t", "r", "Gg7-1234567890", creation))
		if err != nil {
			return err
		}
		_, err = db.DeleteUser(mx("b"), &dbpb.DeleteUserRequest{Username: resp.Username})
		return err
	})
	check("DeleteUser revokes (no login, no pg_roles row) and is idempotent", func() error {
		for i := 0; i < 2; i++ {
			if _, err := db.DeleteUser(mx("b"), &dbpb.DeleteUserRequest{Username: userB}); err != nil {
				return fmt.Errorf("delete #%d: %v", i+1, err)
			}
		}
		if canLogin(pg, userB, pwB) == nil {
			return errors.New("revoked user still logs in")
		}
		n, err := roleCount(pg, userB)
		if err != nil || n != 0 {
			return fmt.Errorf("pg_roles rows %d (%v)", n, err)
		}
		return nil
	})
	check("root rotation: new password takes effect, plugin keeps working, and re-Initialize with it works", func() error {
		rootName := fmt.Sprintf("conf_root_%d", time.Now().UnixNano()%1e6)
		rootPw := "Hh8-" + fmt.Sprint(time.Now().UnixNano())
		secrets = append(secrets, rootPw)
		if err := adminExec(pg, fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", rootName, rootPw)); err != nil {
			return err
		}
		cfgC := map[string]interface{}{"connection_url": url, "username": rootName, "password": rootPw}
		if _, err := db.Initialize(mx("c"), &dbpb.InitializeRequest{ConfigData: toStruct(cfgC), VerifyConnection: true}); err != nil {
			return err
		}
		next := "Ii9-" + fmt.Sprint(time.Now().UnixNano())
		secrets = append(secrets, next)
		if _, err := db.UpdateUser(mx("c"), &dbpb.UpdateUserRequest{Username: rootName, Password: &dbpb.ChangePassword{NewPassword: next}}); err != nil {
			return err
		}
		if canLogin(pg, rootName, rootPw) == nil {
			return errors.New("old root password still works")
		}
		if _, err := db.NewUser(mx("c"), newUserReq("afterrot", "r", "Jj0-1234567890", creation)); err != nil {
			return fmt.Errorf("NewUser after rotation: %v", err)
		}
		// What Vault does next: store the new password, Close, re-Initialize.
		db.Close(mx("c"), &dbpb.Empty{})
		cfgC["password"] = next
		if _, err := db.Initialize(mx("c"), &dbpb.InitializeRequest{ConfigData: toStruct(cfgC), VerifyConnection: true}); err != nil {
			return err
		}
		_, err := db.NewUser(mx("c"), newUserReq("afterinit", "r", "Kk1-1234567890", creation))
		return err
	})
	check("a plugin killed mid-call: in-flight calls fail, a fresh process serves the same stored config", func() error {
		pid := l.client.ReattachConfig().Pid
		var wg sync.WaitGroup
		inflightErrs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := db.NewUser(mx("b"), newUserReq("killed", "r", fmt.Sprintf("Kk-%d-%d", i, time.Now().UnixNano()), creation))
				inflightErrs <- err
			}(i)
		}
		time.Sleep(3 * time.Millisecond)
		syscall.Kill(pid, syscall.SIGKILL)
		wg.Wait()
		close(inflightErrs)
		failedCalls := 0
		for err := range inflightErrs {
			if err != nil {
				failedCalls++
			}
		}
		if failedCalls == 0 {
			return errors.New("the kill came after every call finished: nothing was in flight")
		}
		gone(pid, 2*time.Second)
		l.client.Kill()
		prevLogs = l.logs.String()
		l2, err := launchDatabase(exe, []int{5, 6}, "VAULT_PLUGIN_LOG_LEVEL=trace")
		if err != nil {
			return err
		}
		l = l2
		db = dbpb.NewDatabaseClient(l.session.conn)
		if _, err := db.Initialize(mx("b"), &dbpb.InitializeRequest{ConfigData: toStruct(cfgB), VerifyConnection: true}); err != nil {
			return err
		}
		r, err := db.NewUser(mx("b"), newUserReq("restart", "r", "Ll2-1234567890", creation))
		if err != nil {
			return err
		}
		_, err = db.DeleteUser(mx("b"), &dbpb.DeleteUserRequest{Username: r.Username})
		return err
	})
	check("Type and Close answer within Vault's 1 s deadline", func() error {
		ctx, cancel := context.WithTimeout(mx("b"), time.Second)
		defer cancel()
		if _, err := db.Type(ctx, &dbpb.Empty{}); err != nil {
			return err
		}
		_, err := db.Close(ctx, &dbpb.Empty{})
		return err
	})
	check("no secret used in this run appears in the plugin's log output", func() error {
		l.client.Kill()
		all := l.logs.String() + prevLogs
		if !strings.Contains(all, "call failed") {
			return errors.New("expected the failed calls above to be logged at debug level")
		}
		for _, s := range secrets {
			if strings.Contains(all, s) {
				return fmt.Errorf("secret found in plugin logs")
			}
		}
		return nil
	})
}

// pgEnv is read before the host clears its environment.
var pgEnv = os.Getenv("CONFORMANCE_PG")
var prevLogs string
