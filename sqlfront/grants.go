package sqlfront

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/go-mysql-server/sql/mysql_db/serial"
	"github.com/dolthub/vitess/go/mysql"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
	"github.com/fogdb/fogdb/kv/lock"
)

// Users and grants live in the engine's mysql database, in memory, and are
// stored as one blob under ("mysqldb"). The engine changes its in-memory
// copy first and then hands Persist the whole copy, so a node whose copy
// missed another node's change would write that change away. Three things
// keep every node's change:
//
//   - Every statement starts by reloading the copy when a change to the
//     blob has been applied since it was last loaded (syncGrants, from
//     ValidateSession, after the statement's read barrier): a statement
//     works on the newest users and grants this node knows of.
//   - Persist does not write the copy as it is: it takes what the statement
//     changed (the copy against the blob it was loaded from, account by
//     account and role edge by role edge) and applies only that to the blob
//     as stored now.
//   - The write holds the blob's row lock (at the leader, as a row write
//     does), so changes from all nodes queue, each reading the blob its
//     predecessor wrote; and it carries "the blob still has the version I
//     read" as a precondition, which catches a lock lost to a leader
//     change: then it locks, reads and reapplies again, a few times.
//
// A statement whose account another node changed to something else in
// between fails with 1213: it was decided on an account that no longer
// exists as it saw it, and a retry decides again on the new one.
type grantsState struct {
	db atomic.Pointer[mysql_db.MySQLDb] // nil until AttachMySQLDb
	// dirty is set when an applied entry changed the blob: the in-memory
	// copy may be behind the store.
	dirty atomic.Bool
	// base is the blob the in-memory copy equals when no statement is
	// changing it: as loaded, or as the last statement handed it to
	// Persist. Read and written only under the mysql database's editor
	// lock (Persist is called with it held).
	base []byte
}

// persistAttempts bounds Persist's retries against other nodes' changes.
const persistAttempts = 10

var errGrantsConflict = mysql.NewSQLError(mysql.ERLockDeadlock, mysql.SSLockDeadlock,
	"Deadlock found when trying to get lock; try restarting transaction (the account was changed concurrently)")

func mysqlDBKey() []byte { return keys.CatalogKey(catMySQLDB) }

// AttachMySQLDb makes db, the engine's users and grants, follow the store:
// it loads the stored users and grants into db, persists db's changes
// through Persist and reloads db when a change is applied. It reports
// whether users and grants were stored.
func (p *Provider) AttachMySQLDb(ctx *sql.Context, db *mysql_db.MySQLDb) (bool, error) {
	db.SetPersister(p)
	p.grants.db.Store(db)
	return p.reloadGrants(ctx)
}

// ReloadGrants reloads the in-memory users and grants from the store.
func (p *Provider) ReloadGrants(ctx *sql.Context) error {
	_, err := p.reloadGrants(ctx)
	return err
}

func (p *Provider) reloadGrants(ctx *sql.Context) (bool, error) {
	g := &p.grants
	db := g.db.Load()
	if db == nil {
		return false, nil
	}
	// Cleared before the read: a change applied after it sets it again.
	g.dirty.Store(false)
	ed := db.Editor()
	defer ed.Close()
	v, err := p.cat().Get(ctx, mysqlDBKey(), kv.MaxTimestamp)
	if err != nil {
		g.dirty.Store(true)
		return false, err
	}
	if !v.Exists {
		return false, nil
	}
	if err := db.OverwriteUsersAndGrantData(ctx, ed, v.Data); err != nil {
		g.dirty.Store(true)
		return true, fmt.Errorf("sqlfront: stored users and grants: %w", err)
	}
	g.base = append([]byte(nil), v.Data...)
	return true, nil
}

// SyncGrants reloads users and grants when an applied change (or a failed
// one) left the in-memory copy behind the store: statements call it before
// they start, the admin API before it checks root.
func (p *Provider) SyncGrants(ctx *sql.Context) error {
	if !p.grants.dirty.Load() {
		return nil
	}
	return p.ReloadGrants(ctx)
}

// MySQLDbData returns the stored users and grants (nil when none).
func (p *Provider) MySQLDbData() ([]byte, error) {
	v, err := p.cat().Get(context.Background(), mysqlDBKey(), kv.MaxTimestamp)
	if err != nil || !v.Exists {
		return nil, err
	}
	return v.Data, nil
}

// Persist implements the engine's users-and-grants persister: data is the
// whole in-memory copy after a statement changed it; what the statement
// changed is applied to the stored blob (see grantsState).
func (p *Provider) Persist(ctx *sql.Context, data []byte) error {
	g := &p.grants
	data = append([]byte(nil), data...)
	err := p.persistGrants(ctx, data)
	// The in-memory copy is data now, failed or not. Taking it as the base
	// keeps a failed change out of what the next statement persists, which
	// may already be waiting for the copy; the reload then drops it.
	g.base = data
	if err != nil {
		g.dirty.Store(true)
		if p.cfg.OnGrantsChanged != nil {
			p.cfg.OnGrantsChanged()
		}
	}
	return err
}

func (p *Provider) persistGrants(ctx *sql.Context, data []byte) error {
	key := mysqlDBKey()
	// Changes to users and grants queue for the blob's row lock wherever
	// they run, so each reads the blob as its predecessor left it and
	// nodes do not starve each other with failed preconditions. The lock
	// is lost on a leader change; the precondition still holds then.
	owner := lock.TxnID(p.nextTxn.Add(1))
	defer p.cat().ReleaseAll(owner)
	wait := p.cfg.DefaultLockWaitTimeout
	if s, ok := ctx.Session.(*Session); ok {
		wait = s.lockWait(ctx)
	}
	for attempt := 1; ; attempt++ {
		if err := p.cat().Lock(ctx, owner, key, lock.Exclusive, wait); err != nil {
			switch err := storeErr(err); {
			case errors.Is(err, lock.ErrTimeout):
				return errLockWaitTimeout
			case errors.Is(err, lock.ErrDeadlock), errors.Is(err, lock.ErrAborted):
				return errDeadlock
			default:
				return err
			}
		}
		err := p.runDDL(ctx, func(b *ddlBatch) error {
			v, err := p.cat().Get(ctx, key, kv.MaxTimestamp)
			if err != nil {
				return err
			}
			out := data
			if v.Exists && !bytes.Equal(v.Data, p.grants.base) {
				if out, err = mergeGrants(ctx, p.grants.base, data, v.Data); err != nil {
					return err
				}
			}
			b.expect(key, uint64(v.Version))
			b.put(key, out)
			return p.persistAccountTLS(ctx, b, p.grants.base, data)
		})
		if err == errDDLConflict && attempt < persistAttempts {
			continue
		}
		return err
	}
}

// grantsImage is a parsed users-and-grants blob, by primary key.
type grantsImage struct {
	users    map[mysql_db.UserPrimaryKey]*mysql_db.User
	edges    map[mysql_db.RoleEdgesPrimaryKey]*mysql_db.RoleEdge
	replicas []*mysql_db.ReplicaSourceInfo
}

func parseGrants(buf []byte) (img grantsImage, err error) {
	img.users = map[mysql_db.UserPrimaryKey]*mysql_db.User{}
	img.edges = map[mysql_db.RoleEdgesPrimaryKey]*mysql_db.RoleEdge{}
	if len(buf) == 0 {
		return img, nil
	}
	// The flatbuffer accessors panic on a malformed buffer.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlfront: malformed users and grants: %v", r)
		}
	}()
	s := serial.GetRootAsMySQLDb(buf, 0)
	add := func(su *serial.User, super bool) {
		u := mysql_db.LoadUser(su)
		u.IsSuperUser = super
		img.users[mysql_db.UserPrimaryKey{Host: u.Host, User: u.User}] = u
	}
	for i := 0; i < s.UserLength(); i++ {
		su := new(serial.User)
		if s.User(su, i) {
			add(su, false)
		}
	}
	for i := 0; i < s.SuperUserLength(); i++ {
		su := new(serial.User)
		if s.SuperUser(su, i) {
			add(su, true)
		}
	}
	for i := 0; i < s.RoleEdgesLength(); i++ {
		se := new(serial.RoleEdge)
		if s.RoleEdges(se, i) {
			e := mysql_db.LoadRoleEdge(se)
			img.edges[mysql_db.RoleEdgesPrimaryKey{FromHost: e.FromHost, FromUser: e.FromUser, ToHost: e.ToHost, ToUser: e.ToUser}] = e
		}
	}
	for i := 0; i < s.ReplicaSourceInfoLength(); i++ {
		sr := new(serial.ReplicaSourceInfo)
		if s.ReplicaSourceInfo(sr, i) {
			img.replicas = append(img.replicas, mysql_db.LoadReplicaSourceInfo(sr))
		}
	}
	return img, nil
}

// sameUser compares two accounts as stored. Whether the engine files an
// account among its super users depends on how it was loaded, not on
// anything a statement changed, so that is left out.
func sameUser(a, b *mysql_db.User) bool {
	if a == nil || b == nil {
		return a == b
	}
	ac, bc := *a, *b
	ac.IsSuperUser, bc.IsSuperUser = false, false
	return reflect.DeepEqual(ac, bc)
}

func sameEdge(a, b *mysql_db.RoleEdge) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// mergeThree applies to cur every entry mine changed against base. An entry
// both mine and cur changed, to different values, is a conflict.
func mergeThree[K comparable, V any](base, mine, cur map[K]*V, same func(a, b *V) bool) bool {
	changed := map[K]bool{}
	for k := range base {
		changed[k] = true
	}
	for k := range mine {
		changed[k] = true
	}
	for k := range changed {
		b, m, c := base[k], mine[k], cur[k]
		if same(b, m) {
			continue
		}
		if !same(c, b) && !same(c, m) {
			return false
		}
		if m == nil {
			delete(cur, k)
		} else {
			cur[k] = m
		}
	}
	return true
}

// mergeGrants applies to the stored blob cur what mine changed against
// base, and serialises the result as the engine does.
func mergeGrants(ctx *sql.Context, base, mine, cur []byte) ([]byte, error) {
	bi, err := parseGrants(base)
	if err != nil {
		return nil, err
	}
	mi, err := parseGrants(mine)
	if err != nil {
		return nil, err
	}
	ci, err := parseGrants(cur)
	if err != nil {
		return nil, err
	}
	if !mergeThree(bi.users, mi.users, ci.users, sameUser) || !mergeThree(bi.edges, mi.edges, ci.edges, sameEdge) {
		return nil, errGrantsConflict
	}
	scratch := mysql_db.CreateEmptyMySQLDb()
	var out blobSink
	scratch.SetPersister(&out)
	ed := scratch.Editor()
	defer ed.Close()
	for _, u := range ci.users {
		ed.PutUser(u)
	}
	for _, e := range ci.edges {
		ed.PutRoleEdge(e)
	}
	for _, r := range mi.replicas {
		ed.PutReplicaSourceInfo(r)
	}
	if err := scratch.Persist(ctx, ed); err != nil {
		return nil, err
	}
	return out.data, nil
}

// blobSink captures what the engine's Persist serialises.
type blobSink struct{ data []byte }

func (s *blobSink) Persist(_ *sql.Context, data []byte) error {
	s.data = append([]byte(nil), data...)
	return nil
}
