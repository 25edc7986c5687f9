// Package testutil holds the helpers of sandbox-exec's tests. Only _test.go
// files import it.
//
// # The test binary as the helper
//
// A package whose tests need workloads calls [Main] from TestMain and
// registers named helpers, functions of the command line that return an
// exit code:
//
//	func TestMain(m *testing.M) {
//		testutil.Register("open", helperOpen) // args are os.Args[1:]
//		testutil.Main(m)
//	}
//
// A test runs a helper as a child process with [HelperCommand], which
// builds the command line
//
//	<test binary> [args...]   with SANDBOX_EXEC_TEST_HELPER=<name> in the environment
//
// or, for launchers that take a path, arguments and an environment of
// their own, from [Executable], the arguments and [HelperEnv]. In the child,
// [MainHelpers] (called first by [Main]) sees [EnvHelper], unsets it, runs
// the helper with os.Args[1:] and exits with its code; the testing package
// never parses the helper's arguments. After a full run (no -test.run,
// -test.skip, -test.short or -test.list), Main fails when a registered
// helper was never asked for, and when the tests leaked descriptors.
//
// # Irreversible effects
//
// Tests that install seccomp filters, restrict themselves with Landlock or
// change credentials do it in a fresh copy of the test binary:
//
//	func TestFilter(t *testing.T) {
//		if !testutil.RunInSubprocess(t) {
//			return // the parent: the child's result is mirrored
//		}
//		// only the child gets here
//	}
//
// # Root and unprivileged
//
// CI runs as root. An end-to-end package adds a test that calls
// [RerunUnprivileged], which runs the same selection of tests once more in
// a copy of the test binary as uid 65534, with prebuilt helper programs
// passed in the environment (the child has no Go build cache), and fails
// with the child's output. In that child [InUnprivilegedRerun] is true.
//
// # Skips and failures
//
// Skip when the kernel can't, fail when we are wrong: [SkipIfNotSupported]
// follows the real call and skips only on errors wrapping
// sys.ErrNotSupported. Privilege is declared per test with [RequireRoot],
// [RequireNonRoot] and [UnprivilegedCredential].
//
// # Leaks
//
// [CheckFDLeaks] and [CheckGoroutineLeaks] compare the process at the end
// of a test with its start. They see the whole process, so tests using
// them must not run in parallel with others.
package testutil
