/* Lexical path checks shared by the sandboxes (see path.h). */
#include "util/path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int path_absolute(const char *path, const char *cwd, char *out, size_t len)
{
	char tmp[4096];
	int n = path[0] == '/' ? snprintf(tmp, sizeof(tmp), "%s", path)
			       : snprintf(tmp, sizeof(tmp), "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	size_t o = 0;
	char *save = NULL;
	for (char *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, ".."))
			return -EINVAL;
		size_t cl = strlen(c);
		if (o + 1 + cl + 1 > len)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, c, cl);
		o += cl;
	}
	if (o == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		out[o++] = '/';
	}
	out[o] = '\0';
	return 0;
}
