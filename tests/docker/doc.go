// Package docker tests fogdb as it is deployed: the images docker/build.sh
// builds FROM scratch, and the three-site example of docker/compose.yaml
// (a controller and its sidecar per site, a WAN through fogwan, TLS
// everywhere), driven from outside with the docker CLI and MySQL clients.
//
// The tests need a Docker engine and Compose (docker compose or
// docker-compose); without an engine they skip, saying so. They reach the
// containers at the example's fixed addresses (10.213.0.0/16, see
// docker/compose.yaml) from the host, and run the example under a project
// name of their own, removed at the end (FOGDB_DOCKER_KEEP=1 keeps it for a
// look).
package docker
