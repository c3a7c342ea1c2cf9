/* JSON output for `cove img`, laid out as qemu-img lays out its --output json. */
#include "cli/img/img_json.h"

void img_json_init(struct img_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->has_items[0] = false;
}

void img_json_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Separator, newline and indent before an item, then its key. */
static void item(struct img_json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->has_items[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("    ", j->f);
		j->has_items[j->depth] = true;
	}
	if (key) {
		img_json_quote(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_(struct img_json *j, const char *key, char c)
{
	item(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < IMG_JSON_DEPTH) {
		j->depth++;
		j->has_items[j->depth] = false;
	}
}

static void close_(struct img_json *j, char c)
{
	bool had = j->has_items[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (had) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("    ", j->f);
	}
	fputc(c, j->f);
}

void img_json_obj_begin(struct img_json *j, const char *key)
{
	open_(j, key, '{');
}

void img_json_obj_end(struct img_json *j)
{
	close_(j, '}');
}

void img_json_arr_begin(struct img_json *j, const char *key)
{
	open_(j, key, '[');
}

void img_json_arr_end(struct img_json *j)
{
	close_(j, ']');
}

void img_json_str(struct img_json *j, const char *key, const char *val)
{
	item(j, key);
	img_json_quote(j->f, val);
}

void img_json_u64(struct img_json *j, const char *key, uint64_t val)
{
	item(j, key);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void img_json_bool(struct img_json *j, const char *key, bool val)
{
	item(j, key);
	fputs(val ? "true" : "false", j->f);
}

void img_json_end(struct img_json *j)
{
	fputc('\n', j->f);
}
