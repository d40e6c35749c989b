package sync

import "os"

// hasData always says yes: finding a sparse file's allocated ranges on
// Windows takes FSCTL_QUERY_ALLOCATED_RANGES, and NTFS files are rarely
// sparse. The blocks are read, and the zero ones still travel as holes
// (allZero).
func hasData(*os.File, int64, int) bool { return true }
