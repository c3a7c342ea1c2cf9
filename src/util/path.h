/* Lexical path checks shared by the sandboxes (cove run's jail, coved's confinement). */
#ifndef COVE_UTIL_PATH_H
#define COVE_UTIL_PATH_H

#include <stddef.h>

/*
 * Writes path, taken relative to cwd unless absolute, to out as an absolute, lexically
 * clean path ("." and repeated slashes removed). A ".." component is refused: a path
 * bound or created under a new root must not climb out of it. Returns 0, -EINVAL for
 * "..", or -ENAMETOOLONG when it does not fit in len bytes.
 */
int path_absolute(const char *path, const char *cwd, char *out, size_t len);

#endif
