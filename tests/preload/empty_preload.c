// A shared library that does nothing: coil_run_cli_test.sh preloads it in place of
// libcoil_preload.so (COIL_PRELOAD_LIBRARY), so that what it checks, the environment coil-run
// builds, does not depend on the real library.
int coil_test_empty_preload;
