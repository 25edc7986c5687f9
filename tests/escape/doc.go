// Package escape is the escape suite: every case of shared/security.md
// section 2 (P-, S-, D-, N-, C- IDs) as an attack carried out by a real
// worker under the sandbox, plus races, faults, leak checks, fuzzing of
// path resolution and hostile policies. README.md maps each case to its
// test and result.
package escape
