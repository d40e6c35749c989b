package sync

import "os"

// failpointEnv names the environment variable that arms one failpoint.
const failpointEnv = "MESHFS_FAILPOINT"

// failpointExit is how an armed failpoint ends the process: like kill -9.
var failpointExit = func() { os.Exit(137) }

// failpoint ends the process when MESHFS_FAILPOINT equals name. Crash tests
// use it to stop between write, fsync, rename and folder fsync.
func failpoint(name string) {
	if failpointArmed(name, os.Getenv(failpointEnv)) {
		failpointExit()
	}
}

// failpointArmed reports whether the env value env arms the failpoint name.
func failpointArmed(name, env string) bool { return env != "" && env == name }
