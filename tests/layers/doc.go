// Package layers holds the tests of sandbox-exec's defence-in-depth layers
// (Landlock in the worker and the host, namespaces, the syscall baseline,
// hygiene) and of what the command reports about them (features,
// --report, require). Each layer is proven by an attack it stops that the
// other layers would let through; the end-to-end checks run as root and,
// with the host itself dropped to uid 65534, unprivileged.
package layers
