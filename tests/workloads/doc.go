// Package workloads holds the end-to-end tests of sandbox-exec with real
// renderers: Chromium headless taking a screenshot, a Python script and
// fontconfig's fc-list and fc-match, each under its shipped policy in
// policies/ and compared with a run without the sandbox, and learning mode
// (sandbox-exec learn) on the Python and fontconfig workloads.
//
// The programs come from the distribution's packages, which scripts/setup
// installs; a test skips only when its program is missing.
package workloads
