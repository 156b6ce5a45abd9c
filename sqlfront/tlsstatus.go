package sqlfront

import (
	"strings"

	"github.com/dolthub/go-mysql-server/sql"
)

// The TLS a session's connection uses shows as MySQL shows it, in the
// session status variables Ssl_version ("TLSv1.3") and Ssl_cipher (the
// suite's name), empty for a connection in clear. The mysql client's
// status command and drivers that check what they negotiated read them.

// SetTLS records the connection's protocol version and cipher suite, as
// the MySQL listener negotiated them.
func (s *Session) SetTLS(version, cipher string) {
	s.tlsVersion, s.tlsCipher = version, cipher
}

// tlsStatus is the session's value of a TLS status variable, and whether
// name is one.
func (s *Session) tlsStatus(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "ssl_version":
		return s.tlsVersion, true
	case "ssl_cipher":
		return s.tlsCipher, true
	}
	return "", false
}

// withTLSStatus replaces the engine's empty Ssl_version and Ssl_cipher in
// m by the session's.
func (s *Session) withTLSStatus(m map[string]sql.StatusVarValue) {
	for name, v := range m {
		if val, ok := s.tlsStatus(name); ok {
			m[name] = &sql.ImmutableStatusVarValue{Var: v.Variable(), Val: val}
		}
	}
}
