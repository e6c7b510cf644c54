// Package deploy holds the tests of the deployment artifacts beside it: the
// Dockerfiles are built the way `docker build` would build them (their build
// stages run from a clean copy of the tree), .dockerignore keeps state and
// history out of the build context, and the systemd units pass
// `systemd-analyze verify` and `security`. compose.yaml is checked in
// homeport.dev/cloud/cmd/cloud, whose flag parser it must satisfy; smoke.sh
// runs the whole stack where a container engine is present.
package deploy
