// Package enginetest runs go-mysql-server's engine test suites against
// fogdb and, for comparison, against the engine's memory backend. The
// tests are behind the enginetest build tag: tests/enginetest.sh builds and
// runs them and compares the two backends subtest by subtest.
package enginetest
