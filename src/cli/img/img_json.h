/* A small JSON writer that prints like qemu-img (4-space indent, fields in given order). */
#ifndef COVE_CLI_IMG_JSON_H
#define COVE_CLI_IMG_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define IMG_JSON_DEPTH 16

struct img_json {
	FILE *f;
	int depth;
	bool has_items[IMG_JSON_DEPTH];
};

void img_json_init(struct img_json *j, FILE *f);
/* key is NULL inside arrays. */
void img_json_obj_begin(struct img_json *j, const char *key);
void img_json_obj_end(struct img_json *j);
void img_json_arr_begin(struct img_json *j, const char *key);
void img_json_arr_end(struct img_json *j);
void img_json_str(struct img_json *j, const char *key, const char *val);
void img_json_u64(struct img_json *j, const char *key, uint64_t val);
void img_json_bool(struct img_json *j, const char *key, bool val);
/* Ends the document with a newline. */
void img_json_end(struct img_json *j);
/* Prints s as a JSON string literal. */
void img_json_quote(FILE *f, const char *s);

#endif
