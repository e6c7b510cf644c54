// Package deploy holds the tests of the deployment artifacts beside it: the
// Dockerfiles are built the way `docker build` would build them (their build
// stages run from a clean copy of the tree), .dockerignore keeps state and
// history out of the build context, and the systemd units pass
// `systemd-analyze verify` and `security`; compose.yaml's stack and the
// cloud's unit also run as their processes (users, capabilities, sysctl,
// volume, environment), in namespaces of their own. compose.yaml's flags
// are checked in homeport.dev/cloud/cmd/cloud, against the real parser;
// smoke.sh runs the whole stack where a container engine is present.
package deploy
