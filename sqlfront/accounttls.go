package sqlfront

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/mysql_db"
	"github.com/dolthub/vitess/go/vt/sqlparser"

	"github.com/fogdb/fogdb/kv"
	"github.com/fogdb/fogdb/kv/keys"
)

// An account created with REQUIRE SSL (or X509, ISSUER, SUBJECT, CIPHER)
// may only log in over TLS. go-mysql-server parses the clause and drops
// it, and its stored accounts have no field for it, so fogdb keeps each
// account's requirement beside the users-and-grants blob, under catalog
// key ("accounttls"): a JSON list of {user, host, require}, require being
// MySQL's mysql.user.ssl_type (ANY for SSL, X509, SPECIFIED). It is
// written in the batch that writes the blob, under the blob's lock, so
// the two always agree: an account dropped loses its entry, a new one has
// the entry its CREATE USER gave it or none. (ALTER USER ... REQUIRE and
// RENAME USER are not understood by the engine: 1064 and 1105.)

var catAccountTLS = []byte("accounttls")

func accountTLSKey() []byte { return keys.CatalogKey(catAccountTLS) }

// accountTLS is one account's requirement.
type accountTLS struct {
	User    string `json:"user"`
	Host    string `json:"host"`
	Require string `json:"require"`
}

type accountTLSMap map[mysql_db.UserPrimaryKey]string

func decodeAccountTLS(data []byte) (accountTLSMap, error) {
	m := accountTLSMap{}
	if len(data) == 0 {
		return m, nil
	}
	var list []accountTLS
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("sqlfront: stored TLS requirements of accounts: %w", err)
	}
	for _, a := range list {
		m[mysql_db.UserPrimaryKey{User: a.User, Host: a.Host}] = a.Require
	}
	return m, nil
}

func (m accountTLSMap) encode() ([]byte, error) {
	list := make([]accountTLS, 0, len(m))
	for k, r := range m {
		list = append(list, accountTLS{User: k.User, Host: k.Host, Require: r})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].User != list[j].User {
			return list[i].User < list[j].User
		}
		return list[i].Host < list[j].Host
	})
	return json.Marshal(list)
}

// AccountTLSRequirement is the ssl_type of the account user@host (the
// account's own host pattern, as the engine's GetUser returns it): "" when
// it may log in without TLS, else ANY, X509 or SPECIFIED. It reads this
// node's replica, as logins read the users they check.
func (p *Provider) AccountTLSRequirement(ctx context.Context, user, host string) (string, error) {
	v, err := p.cat().Get(ctx, accountTLSKey(), kv.MaxTimestamp)
	if err != nil || !v.Exists {
		return "", err
	}
	m, err := decodeAccountTLS(v.Data)
	if err != nil {
		return "", err
	}
	for k, r := range m {
		if k.User == user && strings.EqualFold(k.Host, host) {
			return r, nil
		}
	}
	return "", nil
}

// statementAccounts is what the statement being persisted says about
// TLS requirements: the requirement given to each account it creates.
type statementAccounts struct {
	require map[mysql_db.UserPrimaryKey]string
}

func accountKeyOf(a sqlparser.AccountName) mysql_db.UserPrimaryKey {
	host := a.Host
	if a.AnyHost || host == "" {
		host = "%"
	}
	return mysql_db.UserPrimaryKey{User: a.Name, Host: host}
}

// parseStatementAccounts reads the statement's text again: the engine's
// plan of CREATE USER keeps the TLS options but nothing hands them to the
// persister.
func parseStatementAccounts(ctx *sql.Context) statementAccounts {
	sa := statementAccounts{}
	st, err := sqlparser.Parse(ctx.Query())
	if err != nil {
		return sa
	}
	if s, ok := st.(*sqlparser.CreateUser); ok {
		req := ""
		if o := s.TLSOptions; o != nil {
			switch {
			case o.Cipher != "" || o.Issuer != "" || o.Subject != "":
				req = "SPECIFIED"
			case o.X509:
				req = "X509"
			case o.SSL:
				req = "ANY"
			}
		}
		if req != "" {
			sa.require = map[mysql_db.UserPrimaryKey]string{}
			for _, u := range s.Users {
				sa.require[accountKeyOf(u.AccountName)] = req
			}
		}
	}
	return sa
}

// findAccount is k as written in m's keys, host compared without case (as
// MySQL compares host names), or false.
func findAccount[V any](m map[mysql_db.UserPrimaryKey]V, k mysql_db.UserPrimaryKey) (mysql_db.UserPrimaryKey, bool) {
	if _, ok := m[k]; ok {
		return k, true
	}
	for o := range m {
		if o.User == k.User && strings.EqualFold(o.Host, k.Host) {
			return o, true
		}
	}
	return k, false
}

// persistAccountTLS adds to b the change of the TLS requirements that
// goes with the statement changing the users from base to mine.
func (p *Provider) persistAccountTLS(ctx *sql.Context, b *ddlBatch, base, mine []byte) error {
	key := accountTLSKey()
	v, err := p.cat().Get(ctx, key, kv.MaxTimestamp)
	if err != nil {
		return err
	}
	sa := parseStatementAccounts(ctx)
	if !v.Exists && len(sa.require) == 0 {
		return nil // nothing stored, nothing to store
	}
	cur, err := decodeAccountTLS(v.Data)
	if err != nil {
		return err
	}
	bi, err := parseGrants(base)
	if err != nil {
		return err
	}
	mi, err := parseGrants(mine)
	if err != nil {
		return err
	}
	changed := false
	for k := range bi.users {
		if _, ok := mi.users[k]; ok {
			continue
		}
		if old, had := findAccount(cur, k); had {
			delete(cur, old)
			changed = true
		}
	}
	for k := range mi.users {
		if _, ok := bi.users[k]; ok {
			continue
		}
		if sk, ok := findAccount(sa.require, k); ok {
			cur[k] = sa.require[sk]
			changed = true
		} else if old, ok := findAccount(cur, k); ok {
			delete(cur, old)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	data, err := cur.encode()
	if err != nil {
		return err
	}
	b.expect(key, uint64(v.Version))
	b.put(key, data)
	return nil
}
